import Foundation

@testable import WharfAgent

/// The docker CLI as the tests use it to look at and clean up the engine, never through a shell.
struct TestDocker: Sendable {
    let engine: TestEngine
    /// A `DOCKER_CONFIG` of the tests' own, logged in to the auth registry (for pushing).
    let configDirectory: URL

    /// A docker CLI on the test engine with its own `DOCKER_CONFIG` in the sandbox.
    static func make(_ engine: TestEngine, in sandbox: Sandbox) throws -> TestDocker {
        let directory = sandbox.root.appendingPathComponent("test-docker-config")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let credential = RegistryCredential(
            registry: engine.authRegistry,
            username: engine.authUser,
            password: engine.authPassword
        )
        try JobDockerConfig.configJSON([credential]).write(to: directory.appendingPathComponent("config.json"))
        return TestDocker(engine: engine, configDirectory: directory)
    }

    /// Runs `docker arguments…`; throws with docker's output if it fails.
    @discardableResult
    func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> String {
        let result = try await runAllowingFailure(arguments, timeout: timeout)
        guard result.succeeded else {
            throw TestSetupError(
                description: "docker \(arguments.joined(separator: " ")) failed (\(result.endDescription)): \(result.tailText)"
            )
        }
        return result.standardOutput
    }

    /// Runs `docker arguments…` and returns how it ended.
    func runAllowingFailure(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ExecutableLookup.defaultSearchPath
        guard let docker = ExecutableLookup.find("docker", searchPath: path) else {
            throw TestSetupError(description: "the docker CLI is not on PATH")
        }
        let runner = CommandRunner(environment: [
            "PATH": path,
            "DOCKER_HOST": engine.dockerHost,
            "DOCKER_CONFIG": configDirectory.path,
        ])
        return try await runner.run(docker, arguments, timeout: timeout, captureLimit: 16 << 20)
    }

    /// Output lines of `docker arguments…`, empty lines dropped.
    func lines(_ arguments: [String]) async throws -> [String] {
        try await run(arguments).split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
    }

    /// The IDs of a project's containers; running only, or all.
    func containers(project: String, service: String? = nil, all: Bool = false) async throws -> [String] {
        var arguments = ["ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=\(project)"]
        if let service { arguments += ["--filter", "label=com.docker.compose.service=\(service)"] }
        if all { arguments.insert("-a", at: 1) }
        return try await lines(arguments)
    }

    /// `docker inspect` of one container, decoded.
    func inspect(_ container: String) async throws -> ContainerDetails {
        let output = try await run(["container", "inspect", container])
        let details = try JSONDecoder().decode([ContainerDetails].self, from: Data(output.utf8))
        guard let first = details.first else { throw TestSetupError(description: "no such container \(container)") }
        return first
    }

    /// Removes everything a test project left: containers, volumes, networks, rollback tags.
    func cleanUp(project: String) async {
        let label = "label=com.docker.compose.project=\(project)"
        if let ids = try? await lines(["ps", "-aq", "--filter", label]), !ids.isEmpty {
            _ = try? await runAllowingFailure(["rm", "-f", "-v"] + ids)
        }
        if let volumes = try? await lines(["volume", "ls", "-q", "--filter", label]), !volumes.isEmpty {
            _ = try? await runAllowingFailure(["volume", "rm", "-f"] + volumes)
        }
        if let networks = try? await lines(["network", "ls", "-q", "--filter", label]), !networks.isEmpty {
            _ = try? await runAllowingFailure(["network", "rm"] + networks)
        }
        // The test's own images are named <registry>/<project>/…: see Scenario.repository.
        if let images = try? await lines(["images", "--format", "{{.ID}} {{.Repository}}"]) {
            // By ID, so that images a rebuild left untagged go too.
            let mine = images.filter { $0.contains("/\(project)/") }.compactMap { $0.split(separator: " ").first.map(String.init) }
            if !mine.isEmpty { _ = try? await runAllowingFailure(["rmi", "-f"] + Array(Set(mine))) }
        }
        let prefix = StackFiles.rollbackRepository(project: project) + ":"
        if let tags = try? await lines(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=wharf-rollback/*"]) {
            let mine = tags.filter { $0.hasPrefix(prefix) }
            if !mine.isEmpty { _ = try? await runAllowingFailure(["rmi"] + mine) }
        }
    }
}

/// Runs `body` for a compose project and removes what the project left on the engine, whatever happens.
func withProject<T>(
    _ docker: TestDocker,
    _ project: String,
    _ body: () async throws -> T
) async throws -> T {
    do {
        let result = try await body()
        await docker.cleanUp(project: project)
        return result
    } catch {
        await docker.cleanUp(project: project)
        throw error
    }
}
