import Foundation
import Logging
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
        "rollback tags are valid image references, distinct for names that read alike",
        arguments: [
            ("my_app", "web", "my-app", "web"),
            ("shop", "api-worker", "shop-api", "worker"),
            ("s-", "Web.Front", "s_", "Web.Front"),
            ("s__x", "_db", "s-x", "-db"),
            ("web", "app", "web", "App"),
        ]
    )
    func rollbackTags(project: String, service: String, otherProject: String, otherService: String) throws {
        let tag = StackFiles.rollbackTag(project: project, service: service)
        let other = StackFiles.rollbackTag(project: otherProject, service: otherService)
        #expect(tag != other)
        // Docker's reference grammar: path components of lowercase alphanumerics joined by `.`, `_`, `__` or dashes; a tag.
        let grammar = /wharf-rollback\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}/
        for reference in [tag, other] {
            #expect(try grammar.wholeMatch(in: reference) != nil, "\(reference)")
            #expect(reference.hasPrefix(StackFiles.rollbackRepository(project: reference == tag ? project : otherProject) + ":"))
        }
        // Stable across runs and builds: remove() finds the tags a deploy made before an upgrade of the agent.
        #expect(StackFiles.rollbackTag(project: "web", service: "app") == "wharf-rollback/web-\(StackFiles.shortHash("web")):app-\(StackFiles.shortHash("app"))")
        #expect(StackFiles.shortHash("") == "cbf29ce48422")
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

    @Test("an engine with a scratch directory of its own deletes the job docker configs a killed agent left there")
    func leftoverDockerConfigsAreDeleted() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-scratch-test-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: data) }
        let scratch = data.appendingPathComponent("tmp")
        let leftover = try JobDockerConfig.create(
            under: scratch,
            credentials: [RegistryCredential(registry: "127.0.0.1:5000", username: "u", password: "secret")],
            pluginDirectory: nil
        )
        let other = scratch.appendingPathComponent("keep-me")
        try Data("x".utf8).write(to: other)

        let engine = ComposeCLIEngine(stacksDirectory: data.appendingPathComponent("stacks"), dockerHost: "unix:///nowhere.sock",
                                      scratchDirectory: scratch, logger: Logger(label: "test"))
        #expect(engine.configuration.scratchDirectory == scratch)
        #expect(!FileManager.default.fileExists(atPath: leftover.directory.path), "the credentials of the cut-short job are gone")
        #expect(FileManager.default.fileExists(atPath: other.path), "only job docker configs are deleted")

        // A fresh data directory: the scratch directory is made, private.
        let fresh = data.appendingPathComponent("fresh-tmp")
        _ = ComposeCLIEngine(stacksDirectory: data.appendingPathComponent("stacks"), dockerHost: "unix:///nowhere.sock",
                             scratchDirectory: fresh, logger: Logger(label: "test"))
        let attributes = try FileManager.default.attributesOfItem(atPath: fresh.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
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

    @Test("the record of what ran before a deploy is private, read back whole, and deleted when it ends")
    func inFlightRecord() throws {
        let stacks = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-inflight-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: stacks) }
        let files = StackFiles(stacksDirectory: stacks, stackId: "shop")
        try files.writeCompose("services: {}\n")
        #expect(files.loadInFlight() == nil)
        let record = StackFiles.InFlight(jobId: "job_1", images: ["web": "sha256:aa"], containers: ["web": ["c1", "c2"]])
        try files.saveInFlight(record)
        #expect(files.loadInFlight() == record)
        let path = files.directory.appendingPathComponent(StackFiles.inFlightFileName).path
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        try files.removeInFlight()
        #expect(files.loadInFlight() == nil)
        try files.removeInFlight()
    }
}
