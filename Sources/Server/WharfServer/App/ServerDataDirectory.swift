import Foundation
import ZeroMQ
import WharfProtocol

/// The server's data dir: the database, its CURVE key pair, the admin token and `endpoints.json`.
public struct ServerDataDirectory: Sendable {
    public let url: URL

    /// Uses (and on first start creates, 0700) `url`.
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    public var databasePath: String { url.appendingPathComponent("wharf.sqlite").path }
    public var adminTokenURL: URL { url.appendingPathComponent("admin-token") }
    var serverKeyURL: URL { url.appendingPathComponent("server.key") }
    var endpointsURL: URL { url.appendingPathComponent("endpoints.json") }

    /// Writes a secret with mode 0600 from the start (`PrivateFile`).
    private func writeSecret(_ text: String, to url: URL) throws {
        do {
            try PrivateFile.write(Array((text + "\n").utf8), to: url.path)
        } catch {
            throw StoreError(code: "database", message: error.description)
        }
    }

    /// The text of an existing secret, or `nil` when its file does not exist.
    ///
    /// Any other failure stops start-up: making a new key or token over a file that is there but
    /// cannot be read (a restore with the wrong owner, a disk error) would cut off every enrolled
    /// agent, or lock the admin out, for good.
    private func existingSecret(at url: URL, what: String) throws -> String? {
        do {
            return try PrivateFile.readTextIfPresent(url.path)?.trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw StoreError(code: "data_directory", message: "\(error.description); the \(what) is left as it is: "
                             + "fix or restore the file (remove it only to start over with a new \(what))")
        }
    }

    /// The server's CURVE key pair, made on first start; a key file that is there but unusable is an error.
    public func serverKeys() throws -> CurveKeyPair {
        if let text = try existingSecret(at: serverKeyURL, what: "server key") {
            do {
                return try CurveKeyPair(secretKey: CurveKey(z85: text))
            } catch {
                throw StoreError(code: "data_directory", message: "\(serverKeyURL.path) holds no valid CURVE secret key "
                                 + "(\(error)); the server key is left as it is: fix or restore the file "
                                 + "(remove it only to start over with a new server key, which every agent must enrol again for)")
            }
        }
        let pair = try CurveKeyPair.generate()
        try writeSecret(pair.secretKey.z85, to: serverKeyURL)
        return pair
    }

    /// The admin API token, made on first start (mode 0600); a token file that is there but
    /// unreadable or empty is an error.
    public func adminToken() throws -> String {
        if let token = try existingSecret(at: adminTokenURL, what: "admin token") {
            guard !token.isEmpty else {
                throw StoreError(code: "data_directory", message: "\(adminTokenURL.path) is empty; the admin token is left as it is: "
                                 + "restore the file (remove it only to start over with a new admin token)")
            }
            return token
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try writeSecret(token, to: adminTokenURL)
        return token
    }

    /// Writes `{"http": …, "zmq": …}` with the ports really bound. The file is for tools on this
    /// host, so a wildcard bind is written as the loopback address that reaches it (as the HTTP
    /// one is): `tcp://0.0.0.0:9001` as `tcp://127.0.0.1:9001`, `tcp://[::]:9001` as `tcp://[::1]:9001`.
    public func writeEndpoints(http: String, zmq: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(["http": http, "zmq": Self.local(zmq)]).write(to: endpointsURL, options: .atomic)
    }

    static func local(_ endpoint: String) -> String {
        for (wildcard, loopback) in [("tcp://0.0.0.0:", "tcp://127.0.0.1:"), ("tcp://[::]:", "tcp://[::1]:")]
        where endpoint.hasPrefix(wildcard) {
            return loopback + endpoint.dropFirst(wildcard.count)
        }
        return endpoint
    }
}
