import Foundation
import Testing

@testable import WharfAgent

/// The files and names the driver writes, without an engine.
struct StackFilesTests {
    @Test(
        "stack and project names",
        arguments: [
            ("web", true), ("my-app_2", true), ("0day", true), ("", false), ("Web", false),
            ("-web", false), ("_web", false), ("a b", false), ("a/b", false), ("../x", false), ("a.b", false),
        ]
    )
    func names(name: String, valid: Bool) {
        #expect(StackFiles.isValidName(name) == valid)
    }

    @Test(
        "rollback tags are valid image references",
        arguments: [
            ("web", "app", "wharf-rollback/web-app:previous"),
            ("my_stack", "api", "wharf-rollback/my-stack-api:previous"),
            ("s-", "Web.Front", "wharf-rollback/s-web-front:previous"),
            ("s__x", "_db", "wharf-rollback/s-x-db:previous"),
        ]
    )
    func rollbackTags(project: String, service: String, expected: String) {
        #expect(StackFiles.rollbackTag(project: project, service: service) == expected)
    }

    @Test("the override pins each service's image, quoted, with $ escaped")
    func overrideYAML() {
        let yaml = StackFiles.overrideYAML(
            images: ["web": "127.0.0.1:5000/demo/web:v1", "api": "reg/a\"b$c"],
            version: "3.8"
        )
        #expect(
            yaml.hasSuffix(
                """
                version: "3.8"
                services:
                  "api":
                    image: "reg/a\\"b$$c"
                  "web":
                    image: "127.0.0.1:5000/demo/web:v1"

                """
            )
        )
    }

    @Test(
        "a compose file's top-level version is repeated in the override (compose v1 needs it)",
        arguments: [
            ("version: \"3.8\"\nservices: {}\n", "3.8"),
            ("version: '2.4' # old\nservices: {}\n", "2.4"),
            ("services:\n  web:\n    version: 1\n", nil),
            ("services: {}\n", nil),
        ] as [(String, String?)]
    )
    func topLevelVersion(compose: String, expected: String?) {
        #expect(StackFiles.topLevelVersion(of: compose) == expected)
    }

    @Test("config.json holds base64(user:pass) under host:port, and Docker Hub's legacy key")
    func dockerConfig() throws {
        let json = try JobDockerConfig.configJSON([
            RegistryCredential(registry: "127.0.0.1:5000", username: "u", password: "p: w"),
            RegistryCredential(registry: "docker.io", username: "hub", password: "x"),
        ])
        let decoded = try JSONDecoder().decode([String: [String: [String: String]]].self, from: json)
        #expect(decoded["auths"]?["127.0.0.1:5000"]?["auth"] == Data("u:p: w".utf8).base64EncodedString())
        #expect(decoded["auths"]?["https://index.docker.io/v1/"]?["auth"] == Data("hub:x".utf8).base64EncodedString())
    }

    @Test("the job DOCKER_CONFIG is private and gone after remove()")
    func dockerConfigDirectory() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-scope-test-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: parent) }
        let scope = try JobDockerConfig.create(under: parent, credentials: [], pluginDirectory: nil)
        let attributes = try FileManager.default.attributesOfItem(atPath: scope.directory.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        let file = try FileManager.default.attributesOfItem(atPath: scope.directory.appendingPathComponent("config.json").path)
        #expect((file[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        scope.remove()
        #expect(!FileManager.default.fileExists(atPath: scope.directory.path))
    }

    @Test("output lines are capped, stripped of ANSI escapes and carriage returns")
    func lineSplitter() {
        var splitter = LineSplitter(maxLineBytes: 8)
        var lines: [String] = []
        let input = Array("\u{1B}[1A\u{1B}[2K web Pulled\r\nshort\n0123456789abcdef\nlast".utf8)
        input.withUnsafeBytes { splitter.feed($0, emit: { lines.append($0) }) }
        splitter.finish(emit: { lines.append($0) })
        #expect(lines == [" web Pul …", "short", "01234567 …", "last"])
    }

    @Test("the job log stops at its cap with one truncation line")
    func jobLogCap() {
        let recorder = LogRecorder()
        let log = JobLog(totalLimit: 20, sink: recorder.sink)
        for index in 0..<10 { log.output("line \(index)") }
        log.step("rolling back")
        #expect(recorder.lines == ["line 0", "line 1", "... output truncated", "rolling back"])
    }
}
