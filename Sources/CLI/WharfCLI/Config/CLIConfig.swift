import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The settings `wharf login` saves, in `$XDG_CONFIG_HOME/wharf/config.json` or else
/// `$HOME/.config/wharf/config.json`, readable by its owner only (it holds the admin token).
public struct CLIConfig: Codable, Sendable, Equatable {
    /// The server's base URL, such as `http://wharf.example.com:9000`.
    public var server: String?
    /// The admin API token.
    public var token: String?

    /// Makes settings.
    public init(server: String? = nil, token: String? = nil) {
        self.server = server
        self.token = token
    }

    /// The config file's place for the given process environment.
    public static func fileURL(environment: [String: String]) -> URL {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("wharf/config.json")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.path
        return URL(fileURLWithPath: home).appendingPathComponent(".config/wharf/config.json")
    }

    /// Reads the settings at `url`; nil when there is no file.
    public static func load(from url: URL) throws -> CLIConfig? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(CLIConfig.self, from: Data(contentsOf: url))
        } catch {
            throw CLIError(code: "invalid_config",
                           message: "\(url.path) is not a valid wharf config file; run `wharf login` again or fix it")
        }
    }

    /// Writes the settings to `url` with mode 0600 (its folder 0700), replacing the old file atomically.
    public func save(to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw CLIError(code: "config_not_written", message: "could not create \(directory.path): \(error.localizedDescription)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        // Created 0600 from the start, so the token is never readable by others, even briefly.
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CLIError(code: "config_not_written", message: "could not write \(temporary.path): \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        _ = fchmod(fd, 0o600)
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw CLIError(code: "config_not_written", message: "could not write \(url.path): \(reason)")
        }
    }
}

/// The server and token a command talks to: `--server`/`--token`, else `WHARF_SERVER`/`WHARF_TOKEN`,
/// else what `wharf login` saved. The saved token only ever goes to the saved server.
public struct Connection: Sendable, Equatable {
    /// The server's base URL, without a trailing slash.
    public var server: String
    /// The admin token, when one is known.
    public var token: String?

    /// Makes a connection.
    public init(server: String, token: String?) {
        self.server = server
        self.token = token
    }

    /// Picks each setting from the first place that has it: flag, environment variable, config file.
    ///
    /// The token `wharf login` saved is used only with the server it was saved for: another server
    /// (from `--server` or `WHARF_SERVER`) needs its own `--token` or `WHARF_TOKEN`, so the admin
    /// token is never sent to a server it does not belong to.
    public static func resolve(server flagServer: String?, token flagToken: String?,
                               environment: [String: String], config: CLIConfig?) throws -> Connection {
        func nonEmpty(_ value: String?) -> String? {
            guard let value = value?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
            return value
        }
        guard let serverText = nonEmpty(flagServer) ?? nonEmpty(environment["WHARF_SERVER"]) ?? nonEmpty(config?.server) else {
            throw CLIError(code: "not_logged_in",
                           message: "no server configured: run `wharf login --server URL --token-file FILE`, or set WHARF_SERVER and WHARF_TOKEN")
        }
        let server = try ServerURL.normalize(serverText)
        if let token = nonEmpty(flagToken) ?? nonEmpty(environment["WHARF_TOKEN"]) {
            return Connection(server: server, token: token)
        }
        guard let savedToken = nonEmpty(config?.token) else { return Connection(server: server, token: nil) }
        guard let savedServer = nonEmpty(config?.server).flatMap({ try? ServerURL.normalize($0) }),
              ServerURL.sameServer(savedServer, server) else {
            let savedFor = nonEmpty(config?.server) ?? "another server"
            throw CLIError(code: "not_logged_in",
                           message: "the token `wharf login` saved is for \(savedFor), not \(server): pass --token or set WHARF_TOKEN, or run `wharf login --server \(server) --token-file FILE`")
        }
        return Connection(server: server, token: savedToken)
    }
}

/// Server URL checks shared by every command.
public enum ServerURL {
    /// Whether the token would cross a network unencrypted: `http://` to a host other than this
    /// machine (`localhost`, `127.0.0.0/8`, `::1`).
    public static func sendsTokenInClear(_ normalized: String) -> Bool {
        guard let components = URLComponents(string: normalized), components.scheme?.lowercased() == "http",
              components.host != nil else { return false }
        return !isLoopback(normalized)
    }

    /// Whether the URL's host is this machine's loopback (localhost, 127.0.0.0/8, ::1).
    public static func isLoopback(_ url: String) -> Bool {
        guard let host = URLComponents(string: url)?.host?.lowercased() else { return false }
        return host == "localhost" || host.hasSuffix(".localhost") || host == "::1" || host == "[::1]"
            || host.split(separator: ".").count == 4 && host.hasPrefix("127.") && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }

    /// `http://host:port` form of `text`: adds `http://` when no scheme is given, drops trailing slashes.
    public static func normalize(_ text: String) throws -> String {
        var text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.contains("://") { text = "http://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.query == nil else {
            throw CLIError.usage("'\(text)' is not a server URL such as http://wharf.example.com:9000")
        }
        return text
    }

    /// Whether two normalised URLs name the same server: scheme and host compared without case,
    /// a missing port taken as the scheme's default, the path as it is.
    public static func sameServer(_ first: String, _ second: String) -> Bool {
        func key(_ text: String) -> String? {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                  let host = components.host?.lowercased() else { return nil }
            let port = components.port ?? (scheme == "https" ? 443 : 80)
            return "\(scheme)://\(host):\(port)\(components.percentEncodedPath)"
        }
        guard let first = key(first), let second = key(second) else { return false }
        return first == second
    }
}
