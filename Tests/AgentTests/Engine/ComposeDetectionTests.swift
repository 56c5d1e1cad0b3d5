import Foundation
import Testing

@testable import WharfAgent

/// How the driver finds compose and reports the engine, and what it does when the engine is gone.
@Suite("ComposeCLIEngine detection and reachability", .serialized)
struct ComposeDetectionTests {
    @Test("without a compose command the docker compose plugin is used", .timeLimit(.minutes(1)))
    func detectsPlugin() async throws {
        let engine = try TestEngine.fromEnvironment()
        try await withSandbox { sandbox async throws in
            let info = try await engine.makeEngine(flavour: nil, sandbox: sandbox).info()
            #expect(info.composeFlavour == .plugin)
            #expect(info.composeVersion.hasPrefix("2."), "\(info.composeVersion)")
            #expect(!info.dockerVersion.isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.scratch.path).isEmpty)
        }
    }

    @Test("the docker compose plugin runs as its own binary, the one the docker CLI would run", .timeLimit(.minutes(2)))
    func pluginRunsAsItsOwnBinary() async throws {
        let engine = try TestEngine.fromEnvironment()
        let binary = try #require(ComposeCommand.pluginBinaryCandidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                                  "the compose plugin is installed in one of the docker CLI's plugin directories")
        for flavour in [nil, ComposeFlavour.plugin] {
            try await withSandbox { sandbox async throws in
                let recorder = LogRecorder()
                // A compose file compose refuses: the job fails at once, after saying which compose it uses.
                let outcome = await engine.makeEngine(flavour: flavour, sandbox: sandbox).deploy(
                    StackDeployment(jobId: nil, stackId: "direct", projectName: "direct", compose: "services: [\n",
                                    environment: [:], images: [:], pull: false, credentials: [], healthTimeout: .seconds(5)),
                    log: recorder.sink)
                #expect(outcome.errorCode == .invalidStack, "\(outcome.errorMessage ?? "")")
                #expect(recorder.lines.contains { $0.hasPrefix("using docker compose (\(binary)) on ") }, "\(recorder.text)")
            }
        }
    }

    @Test("without the plugin, docker-compose is used", .timeLimit(.minutes(1)))
    func fallsBackToStandalone() async throws {
        let engine = try TestEngine.fromEnvironment()
        try await withSandbox { sandbox async throws in
            let path = ProcessInfo.processInfo.environment["PATH"] ?? ExecutableLookup.defaultSearchPath
            let docker = try #require(ExecutableLookup.find("docker", searchPath: path))
            // A docker CLI that has no compose plugin, as on a node with only docker-compose installed.
            let wrapper = sandbox.root.appendingPathComponent("docker")
            let script = """
                #!/bin/sh
                if [ "$1" = compose ]; then echo "docker: 'compose' is not a docker command." >&2; exit 1; fi
                exec \(docker) "$@"

                """
            try Data(script.utf8).write(to: wrapper)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper.path)
            var configuration = ComposeCLIEngine.Configuration(
                stacksDirectory: sandbox.stacks,
                dockerHost: engine.dockerHost,
                dockerExecutable: wrapper.path
            )
            configuration.scratchDirectory = sandbox.scratch
            let info = try await ComposeCLIEngine(configuration: configuration, logger: .init(label: "test")).info()
            #expect(info.composeFlavour == .standalone)
            #expect(info.composeVersion.hasPrefix("1."), "\(info.composeVersion)")
        }
    }

    @Test("an explicit --compose-command docker-compose is honoured", .timeLimit(.minutes(1)))
    func explicitStandalone() async throws {
        let engine = try TestEngine.fromEnvironment()
        try await withSandbox { sandbox async throws in
            let words = ComposeCLIEngine.composeCommandWords("docker-compose")
            #expect(words == ["docker-compose"])
            var configuration = ComposeCLIEngine.Configuration(
                stacksDirectory: sandbox.stacks,
                dockerHost: engine.dockerHost,
                composeCommand: words
            )
            configuration.scratchDirectory = sandbox.scratch
            let driver = ComposeCLIEngine(configuration: configuration, logger: .init(label: "test"))
            let info = try await driver.info()
            #expect(info.composeFlavour == .standalone)
            #expect(info.composeVersion.hasPrefix("1."), "Debian's docker-compose is 1.29: \(info.composeVersion)")

            let plugin = try await engine.makeEngine(flavour: .plugin, sandbox: sandbox).info()
            #expect(plugin.composeFlavour == .plugin)
            #expect(ComposeCLIEngine.composeCommandWords(" docker  compose ") == ["docker", "compose"])
        }
    }

    @Test("a --compose-command that does not work fails jobs with compose_failed, saying so, not invalid_stack", .timeLimit(.minutes(1)))
    func explicitCommandThatDoesNotWork() async throws {
        let engine = try TestEngine.fromEnvironment()
        try await withSandbox { sandbox async throws in
            // What `--compose-command "docker compose"` meets on a node without the plugin: docker
            // answers that the subcommand is not one of its commands.
            var configuration = ComposeCLIEngine.Configuration(
                stacksDirectory: sandbox.stacks,
                dockerHost: engine.dockerHost,
                composeCommand: ["docker", "no-such-plugin"]
            )
            configuration.scratchDirectory = sandbox.scratch
            let driver = ComposeCLIEngine(configuration: configuration, logger: .init(label: "test"))
            let recorder = LogRecorder()
            let outcome = await driver.deploy(StackDeployment(
                stackId: "bad-command", projectName: "bad-command", compose: "services:\n  web:\n    image: busybox\n",
                environment: [:], images: [:], pull: false, credentials: [], healthTimeout: .seconds(5)
            ), log: recorder.sink)
            #expect(outcome.state == .failed)
            #expect(outcome.errorCode == .composeFailed, "\(outcome.errorCode?.rawValue ?? "-")")
            #expect(outcome.errorMessage?.contains("\"docker no-such-plugin\" does not work on this node") == true, "\(outcome.errorMessage ?? "")")
        }
    }

    @Test("an unreachable engine: info throws, jobs fail with engine_unreachable", .timeLimit(.minutes(1)), arguments: ComposeFlavour.allCases)
    func unreachableEngine(flavour: ComposeFlavour) async throws {
        let engine = try TestEngine.fromEnvironment()
        try await withSandbox { sandbox async throws in
            let socket = sandbox.root.appendingPathComponent("no-such-dir/docker.sock").path
            let driver = engine.makeEngine(flavour: flavour, sandbox: sandbox, dockerHost: "unix://\(socket)")

            await #expect {
                try await driver.info()
            } throws: { error in
                (error as? ContainerEngineError)?.code == .engineUnreachable
            }

            let log = LogRecorder()
            let outcome = await driver.deploy(
                StackDeployment(
                    stackId: "gone",
                    projectName: "gone",
                    compose: "services:\n  web:\n    image: busybox\n",
                    images: ["web": "busybox"]
                ),
                log: log.sink
            )
            #expect(outcome.state == .failed)
            #expect(outcome.errorCode == .engineUnreachable)
            #expect(outcome.errorMessage?.contains(socket) == true, "\(outcome.errorMessage ?? "")")

            let removed = await driver.remove(stackId: "gone", projectName: "gone", compose: "services: {}\n", environment: [:], log: log.sink)
            #expect(removed.errorCode == .engineUnreachable)
            #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.scratch.path).isEmpty)
        }
    }
}
