import Foundation
import Testing
@testable import WharfCLI

struct ConfigTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-cli-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func theFileFollowsXDGThenHome() {
        #expect(CLIConfig.fileURL(environment: ["XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/u"]).path == "/x/cfg/wharf/config.json")
        #expect(CLIConfig.fileURL(environment: ["HOME": "/home/u"]).path == "/home/u/.config/wharf/config.json")
        // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
        #expect(CLIConfig.fileURL(environment: ["XDG_CONFIG_HOME": "rel", "HOME": "/home/u"]).path == "/home/u/.config/wharf/config.json")
    }

    @Test func savedSettingsAreOwnerOnlyAndReadBack() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = CLIConfig.fileURL(environment: ["XDG_CONFIG_HOME": root.path])
        let config = CLIConfig(server: "http://127.0.0.1:9000", token: "secret-token")
        try config.save(to: file)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let folder = try FileManager.default.attributesOfItem(atPath: file.deletingLastPathComponent().path)
        #expect((folder[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        #expect(try CLIConfig.load(from: file) == config)

        // Saving again over a file someone made world-readable leaves it 0600.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        try CLIConfig(server: "http://other:1", token: "t2").save(to: file)
        let again = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((again[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try CLIConfig.load(from: file)?.server == "http://other:1")
    }

    @Test func aMissingFileIsNoSettingsAndABrokenOneIsAnError() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("config.json")
        #expect(try CLIConfig.load(from: file) == nil)
        try Data("{not json".utf8).write(to: file)
        #expect(throws: CLIError.self) { try CLIConfig.load(from: file) }
    }

    @Test func environmentVariablesOverrideTheFileAndFlagsOverrideBoth() throws {
        let saved = CLIConfig(server: "http://saved:9000", token: "saved-token")
        let fromFile = try Connection.resolve(server: nil, token: nil, environment: [:], config: saved)
        #expect(fromFile == Connection(server: "http://saved:9000", token: "saved-token"))

        let fromEnvironment = try Connection.resolve(server: nil, token: nil,
                                                     environment: ["WHARF_SERVER": "http://env:1/", "WHARF_TOKEN": "env-token"], config: saved)
        #expect(fromEnvironment == Connection(server: "http://env:1", token: "env-token"))

        let mixed = try Connection.resolve(server: nil, token: nil, environment: ["WHARF_TOKEN": "env-token"], config: saved)
        #expect(mixed == Connection(server: "http://saved:9000", token: "env-token"))

        let fromFlags = try Connection.resolve(server: "http://flag:2", token: "flag-token",
                                               environment: ["WHARF_SERVER": "http://env:1", "WHARF_TOKEN": "env-token"], config: saved)
        #expect(fromFlags == Connection(server: "http://flag:2", token: "flag-token"))
    }

    @Test func theSavedTokenGoesOnlyToTheSavedServer() throws {
        let saved = CLIConfig(server: "http://saved:9000", token: "saved-token")
        for other in [(flag: "http://other:9000", environment: [String: String]()),
                      (flag: nil, environment: ["WHARF_SERVER": "http://other:9000"]),
                      (flag: "http://saved:9001", environment: [:]),
                      (flag: "https://saved:9000", environment: [:])] {
            let error = #expect(throws: CLIError.self, "\(other)") {
                try Connection.resolve(server: other.flag, token: nil, environment: other.environment, config: saved)
            }
            #expect(error?.code == "not_logged_in")
            #expect(error?.message.contains("--token") == true && error?.message.contains("WHARF_TOKEN") == true, "\(String(describing: error))")
            #expect(error?.message.contains("saved-token") == false)
        }
        // A token of its own is fine for another server.
        let withToken = try Connection.resolve(server: "http://other:9000", token: nil,
                                               environment: ["WHARF_TOKEN": "env-token"], config: saved)
        #expect(withToken == Connection(server: "http://other:9000", token: "env-token"))
        // The saved server spelt another way is the same server.
        for same in ["saved:9000", "HTTP://Saved:9000/", "http://saved:9000//"] {
            let connection = try Connection.resolve(server: same, token: nil, environment: [:], config: saved)
            #expect(connection.token == "saved-token", "\(same)")
        }
        let defaultPort = CLIConfig(server: "http://saved", token: "saved-token")
        #expect(try Connection.resolve(server: "http://saved:80", token: nil, environment: [:], config: defaultPort).token == "saved-token")
        // A token saved without a server goes nowhere on its own.
        #expect(throws: CLIError.self) {
            try Connection.resolve(server: "http://saved:9000", token: nil, environment: [:], config: CLIConfig(token: "saved-token"))
        }
    }

    @Test func noServerAnywhereSaysHowToLogIn() {
        let error = #expect(throws: CLIError.self) {
            try Connection.resolve(server: nil, token: nil, environment: ["WHARF_SERVER": ""], config: nil)
        }
        #expect(error?.code == "not_logged_in")
        #expect(error?.message.contains("wharf login") == true)
    }
}
