import Foundation
import WharfProtocol

/// One simulated agent: its environment and its CURVE secret key.
public struct FleetMember: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    public var environmentId: String
    /// Z85 secret key; the public key is derived from it.
    public var secretKey: String
}

/// What a fleet learnt when it enrolled, kept in its data directory (0600) so a restart reuses it.
public struct FleetRoster: Codable, Sendable, Equatable {
    /// The server's HTTP URL the fleet enrolled with.
    public var server: String
    public var serverPublicKey: String
    /// The ZeroMQ endpoint the server gave.
    public var endpoint: String
    public var members: [FleetMember]

    /// The roster file of the fleet that starts at `first` with `prefix`.
    static func url(in directory: URL, prefix: String, first: Int) -> URL {
        directory.appendingPathComponent("fleet-\(prefix)-\(first).json")
    }

    /// Reads a roster, or nil when there is none or it is unreadable.
    static func load(from url: URL) -> FleetRoster? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONDecoder().decode(FleetRoster.self, from: data)
    }

    /// Writes the roster with mode 0600: it holds secret keys.
    func save(to url: URL) throws {
        let data = try JSONEncoder().encode(self)
        do {
            try PrivateFile.write(Array(data), to: url.path)
        } catch {
            throw FleetError(error.description)
        }
    }
}
