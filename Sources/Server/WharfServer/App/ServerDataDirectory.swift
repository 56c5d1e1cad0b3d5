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

    /// The server's CURVE key pair, made on first start.
    public func serverKeys() throws -> CurveKeyPair {
        if let text = try? String(contentsOf: serverKeyURL, encoding: .utf8) {
            return try CurveKeyPair(secretKey: CurveKey(z85: text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let pair = try CurveKeyPair.generate()
        try writeSecret(pair.secretKey.z85, to: serverKeyURL)
        return pair
    }

    /// The admin API token, made on first start (mode 0600).
    public func adminToken() throws -> String {
        if let text = try? String(contentsOf: adminTokenURL, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try writeSecret(token, to: adminTokenURL)
        return token
    }

    /// Writes `{"http": …, "zmq": …}` with the ports really bound.
    public func writeEndpoints(http: String, zmq: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(["http": http, "zmq": zmq]).write(to: endpointsURL, options: .atomic)
    }
}
