import Foundation
import Testing
import WharfTestSupport

/// A key or token file that is there but unusable stops start-up, naming the file, and is never
/// replaced by a new secret (which would cut off every enrolled agent or lock the admin out).
///
/// The tests run as root, for whom file modes do not stop reads: the unreadable files are a
/// directory in the file's place, bytes that are not UTF-8, and text that is not a key.
@Suite(.timeLimit(.minutes(2)))
struct SecretFileTests {
    enum Damage: String, CaseIterable, Sendable {
        case directory, invalidUTF8, notAKey, empty
    }

    /// Puts the damaged file at `url`; returns a fingerprint of what is there.
    static func damage(_ url: URL, _ damage: Damage) throws -> String {
        switch damage {
        case .directory:
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            try Data("keep".utf8).write(to: url.appendingPathComponent("inside"))
        case .invalidUTF8:
            try Data([0xff, 0xfe, 0x41, 0xc3, 0x28, 0x0a]).write(to: url)
        case .notAKey:
            try Data("this is not a key\n".utf8).write(to: url)
        case .empty:
            try Data().write(to: url)
        }
        return try fingerprint(url)
    }

    static func fingerprint(_ url: URL) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return "missing" }
        if isDirectory.boolValue {
            return "dir:" + (try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().joined(separator: ","))
        }
        return "file:" + (try Data(contentsOf: url)).base64EncodedString()
    }

    static func startServer(dataDirectory: URL, log: URL) async throws -> (status: Int32?, output: String) {
        let server = try ChildProcess("wharf-server", [
            "--data-dir", dataDirectory.path, "--http-host", "127.0.0.1", "--http-port", "0",
            "--zmq-bind", "tcp://127.0.0.1:*",
        ], log: log)
        let status = await server.wait(timeout: .seconds(30))
        if status == nil { await server.stop() }
        return (status, server.output)
    }

    @Test(arguments: zip(["server.key", "server.key", "server.key", "admin-token", "admin-token", "admin-token"],
                         [Damage.directory, .invalidUTF8, .notAKey, .directory, .invalidUTF8, .empty]))
    func theServerRefusesToStartAndKeepsTheFile(file: String, damage: Damage) async throws {
        let root = try temporaryDirectory("wharf-secret")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let url = data.appendingPathComponent(file)
        let before = try Self.damage(url, damage)

        let (status, output) = try await Self.startServer(dataDirectory: data, log: root.appendingPathComponent("server.log"))
        #expect(status != nil && status != 0, "the server must not run with a damaged \(file): \(output)")
        #expect(output.contains(url.path), "the message names the file: \(output)")
        #expect(try Self.fingerprint(url) == before, "\(file) must be left as it was")
    }

    @Test func aServerWithGoodSecretsStartsAgainWithTheSame() async throws {
        let root = try temporaryDirectory("wharf-secret")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data")
        let server = ServerProcess(dataDirectory: data)
        _ = try await server.start()
        await server.child?.stop()
        let key = try Self.fingerprint(data.appendingPathComponent("server.key"))
        let token = try Self.fingerprint(data.appendingPathComponent("admin-token"))
        _ = try await server.start()
        await server.child?.stop()
        #expect(try Self.fingerprint(data.appendingPathComponent("server.key")) == key)
        #expect(try Self.fingerprint(data.appendingPathComponent("admin-token")) == token)
    }

    @Test(arguments: [Damage.directory, .invalidUTF8, .notAKey])
    func theAgentRefusesToStartAndKeepsItsKey(damage: Damage) async throws {
        let root = try temporaryDirectory("wharf-secret")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("agent")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let url = data.appendingPathComponent("agent.key")
        let before = try Self.damage(url, damage)

        // Nothing listens on port 1: without the check, a new key would be written before enrolling fails.
        let agent = try ChildProcess("wharf-agent", [
            "--server", "http://127.0.0.1:1", "--join", "token", "--data-dir", data.path,
        ], log: root.appendingPathComponent("agent.log"))
        let status = await agent.wait(timeout: .seconds(30))
        if status == nil { await agent.stop() }
        #expect(status != nil && status != 0, "the agent must not run with a damaged key: \(agent.output)")
        #expect(agent.output.contains(url.path), "the message names the file: \(agent.output)")
        #expect(try Self.fingerprint(url) == before, "agent.key must be left as it was")
    }
}
