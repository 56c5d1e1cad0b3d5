import Foundation
import Testing
import WharfProtocol

/// Secrets are written with mode 0600 from their first byte, whole or not at all.
struct PrivateFileTests {
    static func mode(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    @Test func theFileIsPrivateWholeAndReplacesTheOldOne() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-private-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("agent.key").path
        // A world-readable leftover of an interrupted write, and an older file in place.
        FileManager.default.createFile(atPath: path + ".tmp", contents: Data("stale".utf8), attributes: [.posixPermissions: 0o644])
        FileManager.default.createFile(atPath: path, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644])
        #expect(try Self.mode(path + ".tmp") == 0o644)

        try PrivateFile.write(Array("secret\n".utf8), to: path)
        #expect(try Self.mode(path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "secret\n")
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    @Test func aDirectoryThatIsNotThereIsAnError() {
        let path = "/nonexistent-\(UUID().uuidString)/agent.key"
        #expect(throws: PrivateFile.WriteError.self) { try PrivateFile.write([1, 2, 3], to: path) }
    }

    /// Only a missing file reads as absent: anything else that stops a read is an error, so that a
    /// caller never makes a new secret over one that is there.
    @Test func onlyAMissingFileReadsAsAbsent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-private-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("server.key").path
        #expect(try PrivateFile.readTextIfPresent(path) == nil)

        try PrivateFile.write(Array("secret\n".utf8), to: path)
        #expect(try PrivateFile.readTextIfPresent(path) == "secret\n")

        try FileManager.default.removeItem(atPath: path)
        FileManager.default.createFile(atPath: path, contents: Data([0x41, 0xff, 0xfe]))
        #expect(throws: PrivateFile.ReadError.self) { try PrivateFile.readTextIfPresent(path) }

        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let error = #expect(throws: PrivateFile.ReadError.self) { try PrivateFile.readTextIfPresent(path) }
        #expect(error?.description.contains(path) == true)
    }
}
