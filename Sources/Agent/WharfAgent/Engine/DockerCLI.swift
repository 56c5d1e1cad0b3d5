import Foundation

/// The few `docker` CLI calls the compose driver needs besides compose itself.
struct DockerCLI: Sendable {
    /// The compose labels that tie a container to its project and service.
    enum Label {
        static let project = "com.docker.compose.project"
        static let service = "com.docker.compose.service"
        static let oneOff = "com.docker.compose.oneoff"
    }

    /// The resolved path of `docker`.
    var executable: String
    /// Runs `docker` with only `PATH`, `DOCKER_HOST` and the job's `DOCKER_CONFIG`.
    var runner: CommandRunner
    /// The time limit of a query; the engine answers these in milliseconds when it is well.
    var timeout: Duration = .seconds(30)

    /// `docker version --format '{{.Server.Version}}'`; throws `engine_unreachable` when the engine does not answer.
    func serverVersion() async throws -> String {
        let result = try await runner.run(
            executable,
            ["version", "--format", "{{.Server.Version}}"],
            timeout: timeout,
            captureLimit: 64 * 1024
        )
        let version = result.standardOutput.trimmingWhitespace()
        guard result.succeeded, !version.isEmpty else {
            let detail = result.tail.last(where: { !$0.isEmpty }) ?? result.endDescription
            throw ContainerEngineError(.engineUnreachable, "the Docker engine at \(dockerHost) is unreachable: \(detail)")
        }
        return version
    }

    /// The project's service containers (not one-off `compose run` ones): all of them, or only running ones.
    func projectContainers(project: String, includeStopped: Bool) async throws -> [ContainerDetails] {
        var arguments = ["ps", "--no-trunc", "--format", "{{.ID}}", "--filter", "label=\(Label.project)=\(project)"]
        if includeStopped { arguments.insert("--all", at: 1) }
        let output = try await query(arguments)
        let ids = output.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        // `oneoff` is "False" on service containers in both compose v1 and v2; filtering here
        // rather than in `ps` also keeps containers that lack the label.
        return try await inspect(ids).filter { !$0.isOneOff }
    }

    /// `docker inspect` of containers; a container that disappeared meanwhile is left out.
    func inspect(_ ids: [String]) async throws -> [ContainerDetails] {
        guard !ids.isEmpty else { return [] }
        let result = try await runner.run(
            executable,
            ["container", "inspect"] + ids,
            timeout: timeout,
            captureLimit: 16 << 20
        )
        // A container removed between `ps` and `inspect` makes inspect exit 1 but still print the others.
        if !result.succeeded {
            try checkReachable(result)
        }
        guard !result.standardOutputTruncated else {
            throw ContainerEngineError(.composeFailed, "docker inspect printed more than 16 MiB")
        }
        let text = result.standardOutput.trimmingWhitespace()
        guard !text.isEmpty else { return [] }
        do {
            return try JSONDecoder().decode([ContainerDetails].self, from: Data(text.utf8))
        } catch {
            throw ContainerEngineError(.composeFailed, "could not read docker inspect output: \(error)")
        }
    }

    /// `docker tag source target`.
    func tag(_ source: String, _ target: String) async throws {
        _ = try await query(["tag", source, target])
    }

    /// Removes those of the local image tags `references` that exist; image data a container
    /// still uses stays, only the tags go.
    func removeTags(_ references: [String]) async throws {
        guard !references.isEmpty else { return }
        let output = try await query(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        let existing = Set(output.split(whereSeparator: \.isNewline).map(String.init))
        let present = references.filter { existing.contains($0) }.sorted()
        guard !present.isEmpty else { return }
        _ = try await query(["rmi"] + present)
    }

    /// The last `tail` lines a container printed, standard output and error interleaved.
    func logs(_ container: String, tail: Int) async throws -> [String] {
        var runner = self.runner
        runner.tailLines = tail
        let result = try await runner.run(executable, ["logs", "--tail", "\(tail)", container], timeout: timeout)
        return result.succeeded ? result.tail : []
    }

    /// Runs a query, returning standard output; throws if it failed.
    private func query(_ arguments: [String]) async throws -> String {
        let result = try await runner.run(executable, arguments, timeout: timeout, captureLimit: 16 << 20)
        guard result.succeeded else {
            try checkReachable(result)
            throw ContainerEngineError(
                .composeFailed,
                "docker \(arguments.first ?? "") failed (\(result.endDescription)): \(result.lastLines(5))"
            )
        }
        return result.standardOutput
    }

    private func checkReachable(_ result: CommandResult) throws {
        if let line = Self.engineUnreachableLine(result.tail) {
            throw ContainerEngineError(.engineUnreachable, "the Docker engine at \(dockerHost) is unreachable: \(line)")
        }
    }

    private var dockerHost: String { runner.environment["DOCKER_HOST"] ?? "the default socket" }

    /// The line of docker or compose (v1 or v2) output that says the engine could not be reached, if any.
    static func engineUnreachableLine(_ lines: [String]) -> String? {
        lines.first(where: saysEngineUnreachable)?.trimmingWhitespace()
    }

    /// Whether docker or compose (v1 or v2) output says that the engine could not be reached.
    static func saysEngineUnreachable(_ output: String) -> Bool {
        let markers = [
            "Cannot connect to the Docker daemon",  // docker CLI, compose v2
            "while trying to connect to the Docker daemon",  // docker CLI: permission denied on the socket
            "Couldn't connect to Docker daemon",  // compose v1
            "Error while fetching server API version",  // compose v1 (docker-py)
            "error during connect",  // docker CLI over TCP
        ]
        return markers.contains { output.contains($0) }
    }
}

/// The parts of `docker container inspect` the driver reads.
struct ContainerDetails: Decodable, Sendable {
    var id: String
    var name: String
    /// The image ID (`sha256:…`) the container runs.
    var image: String
    var restartCount: Int
    var state: State
    var config: Config
    var hostConfig: HostConfig?

    struct State: Decodable, Sendable {
        var status: String
        var running: Bool
        var restarting: Bool
        var exitCode: Int
        var health: Health?

        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", restarting = "Restarting", exitCode = "ExitCode"
            case health = "Health"
        }
    }

    struct Health: Decodable, Sendable {
        var status: String
        var log: [Probe]?

        struct Probe: Decodable, Sendable {
            var exitCode: Int
            var output: String

            enum CodingKeys: String, CodingKey { case exitCode = "ExitCode", output = "Output" }
        }

        enum CodingKeys: String, CodingKey { case status = "Status", log = "Log" }
    }

    struct Config: Decodable, Sendable {
        /// The image reference the container was created from.
        var image: String
        var labels: [String: String]?
        var env: [String]?

        enum CodingKeys: String, CodingKey { case image = "Image", labels = "Labels", env = "Env" }
    }

    struct HostConfig: Decodable, Sendable {
        var restartPolicy: RestartPolicy?

        struct RestartPolicy: Decodable, Sendable {
            var name: String
            /// `on-failure:N`'s N; 0 when there is no limit.
            var maximumRetryCount: Int?
            enum CodingKeys: String, CodingKey { case name = "Name", maximumRetryCount = "MaximumRetryCount" }
        }

        enum CodingKeys: String, CodingKey { case restartPolicy = "RestartPolicy" }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", image = "Image", restartCount = "RestartCount", state = "State"
        case config = "Config", hostConfig = "HostConfig"
    }

    /// The compose service the container belongs to.
    var service: String? { config.labels?[DockerCLI.Label.service] }

    /// Whether compose created it for `compose run`, not for the service itself.
    var isOneOff: Bool { config.labels?[DockerCLI.Label.oneOff]?.lowercased() == "true" }

    /// Whether it exited with code 0 and Docker will not start it again: a one-shot that finished.
    var ranToCompletion: Bool {
        guard state.status == "exited", state.exitCode == 0, !state.restarting else { return false }
        let policy = hostConfig?.restartPolicy?.name ?? ""
        return policy == "" || policy == "no" || policy == "on-failure"
    }

    /// Whether it has exited and Docker will start it again by its restart policy (it may not
    /// show `Restarting` yet).
    var willRestart: Bool {
        if state.restarting { return true }
        guard !state.running, state.status == "exited", let policy = hostConfig?.restartPolicy else { return false }
        switch policy.name {
        case "always", "unless-stopped":
            return true
        case "on-failure":
            let limit = policy.maximumRetryCount ?? 0
            return state.exitCode != 0 && (limit == 0 || restartCount < limit)
        default:
            return false
        }
    }

    /// The container name without the leading slash.
    var displayName: String { name.hasPrefix("/") ? String(name.dropFirst()) : name }
}
