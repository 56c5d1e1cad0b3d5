import Foundation
import ZeroMQ
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What an agent learnt when it enrolled, kept in its data dir so later starts need no token.
public struct AgentIdentity: Codable, Sendable, Equatable {
    public var environmentId: String
    /// The server's CURVE public key (Z85): the agent talks only to the holder of its secret.
    public var serverPublicKey: String
    /// The server's ZeroMQ endpoint, such as `tcp://wharf.example.com:9001`.
    public var endpoint: String
    /// The server's HTTP URL it enrolled with.
    public var server: String
}

/// Failures while setting an agent up.
public struct AgentSetupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    /// Makes an error with a human message.
    public init(message: String) { self.message = message }
}

/// The agent's data directory: its key pair (0600) and identity.
public struct AgentDataDirectory: Sendable {
    public let url: URL

    /// Uses (and creates, 0700) `url`.
    public init(url: URL) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    var keyURL: URL { url.appendingPathComponent("agent.key") }
    var identityURL: URL { url.appendingPathComponent("identity.json") }

    /// The agent's key pair, made on first use; the secret key file is 0600.
    public func keyPair() throws -> CurveKeyPair {
        if let text = try? String(contentsOf: keyURL, encoding: .utf8) {
            return try CurveKeyPair(secretKey: CurveKey(z85: text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let pair = try CurveKeyPair.generate()
        _ = FileManager.default.createFile(atPath: keyURL.path, contents: Data((pair.secretKey.z85 + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        return pair
    }

    /// The stored identity, if the agent has enrolled.
    public func identity() -> AgentIdentity? {
        guard let data = FileManager.default.contents(atPath: identityURL.path) else { return nil }
        return try? JSONDecoder().decode(AgentIdentity.self, from: data)
    }

    /// Stores the identity (0600).
    public func save(_ identity: AgentIdentity) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        _ = FileManager.default.createFile(atPath: identityURL.path, contents: try encoder.encode(identity),
                                       attributes: [.posixPermissions: 0o600])
    }

    /// Enrols with `server` using a join token, and stores what the server answered.
    public func enrol(server: String, joinToken: String, hostname: String, version: String) async throws -> AgentIdentity {
        let pair = try keyPair()
        guard let url = URL(string: server.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/agents/enrol") else {
            throw AgentSetupError(message: "not a server URL: \(server)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONEncoder().encode([
            "joinToken": joinToken, "publicKey": pair.publicKey.z85, "hostname": hostname, "version": version,
        ])
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw AgentSetupError(message: "cannot reach \(server): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        struct Answer: Decodable { var environmentId: String; var serverPublicKey: String; var endpoint: String }
        struct Failure: Decodable { struct Body: Decodable { var code: String; var message: String }; var error: Body }
        guard status == 200 else {
            let reason = (try? JSONDecoder().decode(Failure.self, from: data)).map { "\($0.error.message) (\($0.error.code))" }
                ?? "HTTP \(status)"
            throw AgentSetupError(message: "enrolment refused: \(reason)")
        }
        let answer = try JSONDecoder().decode(Answer.self, from: data)
        let identity = AgentIdentity(environmentId: answer.environmentId, serverPublicKey: answer.serverPublicKey,
                                     endpoint: answer.endpoint, server: server)
        try save(identity)
        return identity
    }
}
