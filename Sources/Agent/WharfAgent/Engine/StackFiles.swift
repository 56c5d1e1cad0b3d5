import Foundation

/// The files of one stack on the agent: `STACKS/<stackId>/compose.yml` as the user wrote it,
/// and `wharf.override.yml`, which pins each service to the image the job runs.
struct StackFiles: Sendable {
    static let composeFileName = "compose.yml"
    static let overrideFileName = "wharf.override.yml"

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
    /// `wharf-rollback/<project>-<service>:previous`, with characters that an image repository
    /// cannot hold replaced by `-`.
    static func rollbackTag(project: String, service: String) -> String {
        "wharf-rollback/\(repositoryComponent("\(project)-\(service)")):previous"
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
