import Foundation
#if canImport(Glibc)
import Glibc
#endif
import WharfProtocol

/// The files of one stack on the agent: `STACKS/<stackId>/compose.yml` as the user wrote it,
/// `wharf.override.yml`, which pins each service to the image the job runs,
/// `wharf.last-good.json`, what the last deploy that succeeded ran (``LastGood``), and
/// `wharf.in-flight.json`, what ran before a deploy that has not ended (``InFlight``).
struct StackFiles: Sendable {
    static let composeFileName = "compose.yml"
    static let overrideFileName = "wharf.override.yml"
    static let lastGoodFileName = "wharf.last-good.json"
    static let inFlightFileName = "wharf.in-flight.json"

    /// What the last successful deploy of the stack ran: its compose text, pinned images, the
    /// stack's variables and the services the file defines. A rollback runs the services it
    /// returns with these, so a deploy whose new file or variables broke a service does not
    /// bring it back with the same file or variables. It holds the stack's variables, so it is
    /// written like the job journal: 0600, synced, renamed into place.
    struct LastGood: Codable, Sendable, Equatable {
        var compose: String
        var images: [String: String]
        var environment: [String: String]
        var services: [String]
    }

    /// What ran before a deploy changed anything, kept on disk from before its `up` until the job
    /// ends, so that a run cut short by a stop or a crash is not forgotten.
    ///
    /// A job cut short runs again from the start at the agent's next start. Without this record
    /// the run again would remember what the first run left running (the new images, perhaps
    /// broken) as the images to roll back to, and move the rollback tags onto them: a rollback
    /// would then restore nothing. With it, every run of the job returns on failure to what ran
    /// before the first. The record is deleted when the deploy ends with an outcome of its own
    /// (succeeded, rolled back or failed); it stays when the deploy is cut short or stops on an
    /// error it cannot roll back from (the engine unreachable), as the stack may then be half-way.
    struct InFlight: Codable, Sendable, Equatable {
        /// The job that wrote the record; nil for a deploy run without one (tests).
        var jobId: String?
        /// Per service that ran, the image ID it ran (also tagged ``StackFiles/rollbackTag(project:service:)``).
        var images: [String: String]
        /// Per service that ran, the IDs of its running containers, sorted.
        var containers: [String: [String]]
    }

    /// `STACKS/<stackId>`.
    let directory: URL

    init(stacksDirectory: URL, stackId: String) {
        self.directory = stacksDirectory.appendingPathComponent(stackId, isDirectory: true)
    }

    /// The `-f` files, relative to ``directory``, in merge order: the override only when it exists.
    var composeFiles: [String] {
        let override = directory.appendingPathComponent(Self.overrideFileName).path
        return FileManager.default.fileExists(atPath: override)
            ? [Self.composeFileName, Self.overrideFileName]
            : [Self.composeFileName]
    }

    /// Writes the user's compose text, creating the stack directory if needed.
    func writeCompose(_ compose: String) throws {
        try write(compose, to: Self.composeFileName)
    }

    /// Writes the override that pins `images` (service → image reference), or deletes it when
    /// there is nothing to pin.
    ///
    /// Compose v1 reads a file whose `services` is empty as a version 1 file and refuses to merge
    /// it with a newer one, so an empty override is left out rather than written.
    ///
    /// - Parameter version: the compose file's top-level `version`, which Compose v1 requires
    ///   every merged file to repeat.
    func writeOverride(images: [String: String], version: String?) throws {
        guard !images.isEmpty else {
            let url = directory.appendingPathComponent(Self.overrideFileName)
            do {
                if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            } catch {
                throw ContainerEngineError(.composeFailed, "could not delete \(url.path): \(error.localizedDescription)")
            }
            return
        }
        try write(Self.overrideYAML(images: images, version: version), to: Self.overrideFileName)
    }

    /// Records what a deploy that succeeded ran.
    func saveLastGood(_ lastGood: LastGood) throws {
        try saveJSON(lastGood, as: Self.lastGoodFileName, syncingDirectory: false)
    }

    /// What the last successful deploy ran, if this agent recorded one (nil when the file is
    /// missing or unreadable: the rollback then uses the failed deploy's file and variables).
    func loadLastGood() -> LastGood? {
        loadJSON(LastGood.self, from: Self.lastGoodFileName)
    }

    /// Records what ran before a deploy, synced before it returns (``InFlight``). The rename is
    /// durable only once the directory is synced: after a power cut a record that vanished would
    /// let a run again record the new images as the old ones.
    func saveInFlight(_ record: InFlight) throws {
        try saveJSON(record, as: Self.inFlightFileName, syncingDirectory: true)
    }

    /// What ran before a deploy that has not ended, if there is a record of one (nil when the file
    /// is missing or unreadable).
    func loadInFlight() -> InFlight? {
        loadJSON(InFlight.self, from: Self.inFlightFileName)
    }

    /// Writes `value` as JSON to a private file of the stack's directory (``PrivateFile``).
    private func saveJSON(_ value: some Encodable, as name: String, syncingDirectory: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let url = directory.appendingPathComponent(name)
        do {
            try PrivateFile.write(Array(try encoder.encode(value)), to: url.path)
            if syncingDirectory { try PrivateFile.syncDirectory(directory.path) }
        } catch {
            throw ContainerEngineError(.composeFailed, "could not write \(url.path): \(error)")
        }
    }

    /// A JSON file of the stack's directory; nil when it is missing or does not decode.
    private func loadJSON<T: Decodable>(_ type: T.Type, from name: String) -> T? {
        let url = directory.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONDecoder().decode(type, from: data)
    }

    /// Deletes the record of a deploy that has ended, durably: one that came back after a power cut
    /// would make the next deploy return on failure to what ran before this one.
    func removeInFlight() throws {
        let url = directory.appendingPathComponent(Self.inFlightFileName)
        guard unlink(url.path) == 0 || errno == ENOENT else {
            throw ContainerEngineError(.composeFailed, "could not delete \(url.path): \(String(cString: strerror(errno)))")
        }
        do {
            try PrivateFile.syncDirectory(directory.path)
        } catch {
            throw ContainerEngineError(.composeFailed, "could not delete \(url.path): \(error)")
        }
    }

    /// Deletes the stack directory and everything in it.
    func remove() throws {
        if FileManager.default.fileExists(atPath: directory.path) {
            try FileManager.default.removeItem(at: directory)
        }
    }

    private func write(_ text: String, to name: String) throws {
        let fileManager = FileManager.default
        do {
            if !fileManager.fileExists(atPath: directory.path) {
                try fileManager.createDirectory(
                    at: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            }
            let url = directory.appendingPathComponent(name)
            try Data(text.utf8).write(to: url, options: .atomic)
            try fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        } catch {
            throw ContainerEngineError(
                .composeFailed,
                "could not write \(name) in \(directory.path): \(error.localizedDescription)"
            )
        }
    }
}

extension StackFiles {
    /// Whether `name` is a valid stack ID or compose project name: `[a-z0-9][a-z0-9_-]*`.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isLowerAlphanumeric(first) else { return false }
        return name.utf8.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Whether `name` is a valid compose service name: `[a-zA-Z0-9][a-zA-Z0-9._-]*`.
    static func isValidServiceName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlphanumeric(first) else { return false }
        return name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Whether `name` can be an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isValidVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlphabetic(first) || first == UInt8(ascii: "_") else { return false }
        return name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") }
    }

    /// The local tag that keeps a service's previous image for a rollback:
    /// `wharf-rollback/<project>-<hash>:<service>-<hash>`.
    ///
    /// Readable parts have the characters an image reference cannot hold replaced by `-`, so
    /// different names can read the same (`my_app` and `my-app`); the hashes of the exact names
    /// keep one stack's tags from ever naming another's.
    static func rollbackTag(project: String, service: String) -> String {
        "\(rollbackRepository(project: project)):\(tagComponent(service))-\(shortHash(service))"
    }

    /// The repository of a project's rollback tags: `wharf-rollback/<project>-<hash>`.
    static func rollbackRepository(project: String) -> String {
        "wharf-rollback/\(repositoryComponent(project))-\(shortHash(project))"
    }

    /// The tag of the first scheme, `wharf-rollback/<project>-<service>:previous`, which two
    /// stacks could share; `remove` deletes it too, for stacks deployed by an older agent.
    static func legacyRollbackTag(project: String, service: String) -> String {
        "wharf-rollback/\(repositoryComponent("\(project)-\(service)")):previous"
    }

    /// 12 hex digits of the 64-bit FNV-1a hash of `text`: stable across runs and builds.
    static func shortHash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash >> 16, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }

    /// A tag's readable part: `[a-z0-9.-]`, at most 100 characters, never empty.
    private static func tagComponent(_ text: String) -> String {
        var out = ""
        for byte in text.lowercased().utf8 {
            if isLowerAlphanumeric(byte) || byte == UInt8(ascii: ".") {
                out.append(Character(UnicodeScalar(byte)))
            } else if !out.isEmpty, out.last != "-" {
                out.append("-")
            }
            if out.count == 100 { break }
        }
        while out.hasPrefix(".") { out.removeFirst() }
        return out.isEmpty ? "service" : out
    }

    /// The override YAML: `services.<name>.image` per entry, double-quoted, `$` escaped as `$$`
    /// so that compose's interpolation leaves the reference alone.
    static func overrideYAML(images: [String: String], version: String?) -> String {
        var yaml = "# Written by wharf: the images this job runs, which win over compose.yml.\n"
        if let version { yaml += "version: \(quoted(version))\n" }
        yaml += "services:\n"
        for (service, image) in images.sorted(by: { $0.key < $1.key }) {
            yaml += "  \(quoted(service)):\n"
            yaml += "    image: \(quoted(image.replacingOccurrences(of: "$", with: "$$")))\n"
        }
        return yaml
    }

    /// The value of a top-level `version:` key of a compose text, without quotes, if it has one.
    static func topLevelVersion(of compose: String) -> String? {
        for line in compose.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            guard line.hasPrefix("version:") else { continue }
            var value = line.dropFirst("version:".count)
            if let comment = value.range(of: " #") { value = value[..<comment.lowerBound] }
            var text = value.trimmingWhitespace()
            if text.count >= 2, let quote = text.first, quote == "\"" || quote == "'", text.last == quote {
                text = String(text.dropFirst().dropLast())
            }
            return text.isEmpty ? nil : text
        }
        return nil
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func repositoryComponent(_ text: String) -> String {
        var out = ""
        for byte in text.lowercased().utf8 {
            if isLowerAlphanumeric(byte) {
                out.append(Character(UnicodeScalar(byte)))
            } else if !out.isEmpty, out.last != "-" {
                out.append("-")
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "stack" : out
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isAlphabetic(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isAlphabetic(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
