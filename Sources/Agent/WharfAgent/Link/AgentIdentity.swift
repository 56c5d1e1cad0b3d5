import Foundation
import ZeroMQ
import WharfProtocol

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
    /// The server answered the enrolment with a refusal (a bad, used or expired join token): trying
    /// again with the same token cannot help, unlike a server that could not be reached.
    public var refused = false
    public var description: String { message }

    /// Makes an error with a human message.
    public init(message: String, refused: Bool = false) {
        self.message = message
        self.refused = refused
    }
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
    ///
    /// A key file that is there but cannot be read or holds no valid key is an error, never replaced:
    /// a new key would cut the agent off from the server, which knows only the enrolled one.
    public func keyPair() throws -> CurveKeyPair {
        let existing: String?
        do {
            existing = try PrivateFile.readTextIfPresent(keyURL.path)
        } catch {
            throw AgentSetupError(message: "\(error.description); the agent key is left as it is: fix or restore the file "
                                  + "(remove it only to enrol this agent again with a new join token)")
        }
        if let text = existing {
            do {
                return try CurveKeyPair(secretKey: CurveKey(z85: text.trimmingWhitespace()))
            } catch {
                throw AgentSetupError(message: "\(keyURL.path) holds no valid CURVE secret key (\(error)); the agent key is "
                                      + "left as it is: fix or restore the file (remove it only to enrol this agent again with a new join token)")
            }
        }
        let pair = try CurveKeyPair.generate()
        try writePrivate(Array((pair.secretKey.z85 + "\n").utf8), to: keyURL)
        return pair
    }

    /// Whether the agent's key file is there (``keyPair()`` makes one when it is not).
    public var hasKey: Bool { FileManager.default.fileExists(atPath: keyURL.path) }

    /// Removes the key file (a key made for an enrolment that failed).
    public func removeKey() throws {
        try FileManager.default.removeItem(at: keyURL)
    }

    /// The stored identity, if the agent has enrolled.
    public func identity() -> AgentIdentity? {
        guard let data = FileManager.default.contents(atPath: identityURL.path) else { return nil }
        return try? JSONDecoder().decode(AgentIdentity.self, from: data)
    }

    /// Removes the stored identity (before a new key is enrolled in its place: should that
    /// enrolment fail, the directory is not left with an identity and a key the server never saw).
    public func forgetIdentity() throws {
        do {
            try FileManager.default.removeItem(at: identityURL)
        } catch CocoaError.fileNoSuchFile {
        } catch {
            throw AgentSetupError(message: "cannot remove \(identityURL.path): \(error.localizedDescription)")
        }
    }

    /// Stores the identity (0600).
    public func save(_ identity: AgentIdentity) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writePrivate(Array(try encoder.encode(identity)), to: identityURL)
    }

    /// Writes a file of this directory with mode 0600 from the start (`PrivateFile`).
    private func writePrivate(_ bytes: [UInt8], to url: URL) throws {
        do {
            try PrivateFile.write(bytes, to: url.path)
        } catch {
            throw AgentSetupError(message: error.description)
        }
    }

    /// Enrols with `server` using a join token, and stores what the server answered.
    ///
    /// `http://` goes over a plain socket, `https://` through the `curl` program (``AgentHTTPClient``),
    /// so the long-lived agent carries no TLS or HTTP library.
    public func enrol(server: String, joinToken: String, hostname: String, version: String,
                      client: AgentHTTPClient = AgentHTTPClient()) async throws -> AgentIdentity {
        let pair = try keyPair()
        let base = server.hasSuffix("/") ? String(server.dropLast()) : server
        struct Answer: Decodable { var environmentId: String; var serverPublicKey: String; var endpoint: String }
        let answer: Answer
        do {
            answer = try await client.json("POST", base + "/api/agents/enrol", body: [
                "joinToken": joinToken, "publicKey": pair.publicKey.z85, "hostname": hostname, "version": version,
            ], as: Answer.self)
        } catch let error as AgentHTTPStatusError {
            // 4xx: the token (or the request) is refused; 5xx (a proxy while the server restarts) may pass.
            throw AgentSetupError(message: "enrolment refused: \(error)", refused: (400..<500).contains(error.status))
        } catch let error as AgentHTTPError where error.code == .invalidURL {
            throw AgentSetupError(message: "not a server URL: \(server)")
        } catch let error as AgentHTTPError where error.code == .badResponse {
            throw AgentSetupError(message: "unexpected answer from \(server): \(error.message)")
        } catch let error as AgentHTTPError {
            throw AgentSetupError(message: "cannot reach \(server): \(error.message)")
        }
        let identity = AgentIdentity(environmentId: answer.environmentId, serverPublicKey: answer.serverPublicKey,
                                     endpoint: answer.endpoint, server: server)
        try save(identity)
        return identity
    }
}
