import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import WharfProtocol

/// Runs stack jobs with the compose CLI (`docker compose` or `docker-compose`) on one Docker engine.
///
/// Every child process gets an argument array — never a shell — and an environment made only of
/// the stack's variables, `PATH`, `DOCKER_HOST` and a job-scoped `DOCKER_CONFIG` holding the
/// job's registry credentials, which is deleted when the job ends. A failed deploy returns
/// services to the images they ran before; a stack is never taken `down` because a deploy failed.
public struct ComposeCLIEngine: ContainerEngine {
    /// Where and how the engine runs compose.
    public struct Configuration: Sendable {
        /// The directory holding one subdirectory per stack.
        public var stacksDirectory: URL
        /// The engine to run stacks on, e.g. `unix:///var/run/docker.sock`.
        public var dockerHost: String
        /// An explicit compose command (`["docker", "compose"]` or `["docker-compose"]`); nil detects it.
        public var composeCommand: [String]?
        /// The `docker` executable; nil finds it on ``searchPath``.
        public var dockerExecutable: String?
        /// The `PATH` given to compose and docker (and used to find them).
        public var searchPath: String
        /// Where job-scoped `DOCKER_CONFIG` directories are created (and deleted).
        public var scratchDirectory: URL
        /// The agent's own docker CLI plugin directory, linked into each job's `DOCKER_CONFIG`.
        public var pluginDirectory: URL?
        /// The time limit of compose `pull`, `up`, `stop` and `down`; they can hang on a sick engine or registry.
        public var commandTimeout: Duration
        /// The time limit of quick calls: `docker version`, `docker inspect`, `compose config`.
        public var queryTimeout: Duration
        /// How long every container must keep running, once all are running and healthy, to count as healthy.
        ///
        /// It catches a process that dies right after it starts (a bad config, a missing file): such a
        /// container has exited, or is restarting, within milliseconds. 1 s with polls every 250 ms
        /// sees it several times over; a healthcheck, where there is one, has already passed.
        public var settleTime: Duration
        /// How often container states are read while waiting for health.
        public var pollInterval: Duration
        /// How many times Docker may restart a container (by its restart policy) while the agent
        /// waits for health before the deploy fails.
        ///
        /// An app that starts before its database is ready often crashes once and comes up on
        /// its restart; that deploy is good. A crash loop goes past the limit within seconds
        /// (Docker waits 0.1, 0.2, 0.4, 0.8 s between restarts), so it still fails fast.
        public var maxRestarts: Int
        /// The cap on compose output logged per job.
        public var maxLogBytes: Int

        /// A configuration with the agent's defaults; `composeCommand` as from `--compose-command` split on spaces.
        public init(
            stacksDirectory: URL,
            dockerHost: String = "unix:///var/run/docker.sock",
            composeCommand: [String]? = nil,
            dockerExecutable: String? = nil
        ) {
            let environment = ProcessInfo.processInfo.environment
            self.stacksDirectory = stacksDirectory
            self.dockerHost = dockerHost
            self.composeCommand = composeCommand.flatMap { $0.isEmpty ? nil : $0 }
            self.dockerExecutable = dockerExecutable
            self.searchPath = environment["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? ExecutableLookup.defaultSearchPath
            self.scratchDirectory = FileManager.default.temporaryDirectory
            if let dockerConfig = environment["DOCKER_CONFIG"], !dockerConfig.isEmpty {
                self.pluginDirectory = URL(fileURLWithPath: dockerConfig).appendingPathComponent("cli-plugins")
            } else if let home = environment["HOME"], !home.isEmpty {
                self.pluginDirectory = URL(fileURLWithPath: home).appendingPathComponent(".docker/cli-plugins")
            } else {
                self.pluginDirectory = nil
            }
            self.commandTimeout = .seconds(600)
            self.queryTimeout = .seconds(60)
            self.settleTime = .seconds(1)
            self.pollInterval = .milliseconds(250)
            self.maxRestarts = 3
            self.maxLogBytes = JobLog.defaultTotalLimit
        }
    }

    public let configuration: Configuration
    let logger: Logger
    private let detected: DetectedCompose

    /// Creates an engine driver from a full configuration.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.detected = DetectedCompose()
    }

    /// Creates an engine driver with default tunables.
    ///
    /// - Parameters:
    ///   - composeCommand: as from `--compose-command "docker compose"` split on spaces
    ///     (see ``composeCommandWords(_:)``); nil uses the plugin when `docker compose version`
    ///     works, else `docker-compose`.
    ///   - dockerExecutable: the `docker` binary; nil finds it on `PATH`.
    ///   - scratchDirectory: a directory of the agent's own for the jobs' `DOCKER_CONFIG`s (created
    ///     0700 if missing); the ones a killed agent left there, credentials included, are deleted
    ///     now. Nil uses the system's temporary directory and deletes nothing.
    public init(
        stacksDirectory: URL,
        dockerHost: String,
        composeCommand: [String]? = nil,
        dockerExecutable: String? = nil,
        scratchDirectory: URL? = nil,
        logger: Logger
    ) {
        var configuration = Configuration(
            stacksDirectory: stacksDirectory,
            dockerHost: dockerHost,
            composeCommand: composeCommand,
            dockerExecutable: dockerExecutable
        )
        if let scratchDirectory {
            configuration.scratchDirectory = scratchDirectory
            if !FileManager.default.fileExists(atPath: scratchDirectory.path) {
                mkdir(scratchDirectory.path, 0o700)
            }
            let removed = JobDockerConfig.removeLeftovers(under: scratchDirectory)
            if removed > 0 {
                logger.notice("deleted job docker configs left by an earlier run", metadata: ["count": "\(removed)"])
            }
        }
        self.init(configuration: configuration, logger: logger)
    }

    /// Splits a `--compose-command` value on spaces: `"docker compose"` → `["docker", "compose"]`.
    public static func composeCommandWords(_ commandLine: String) -> [String] {
        ComposeCommand.words(commandLine)
    }

    /// The engine version and the compose CLI in use; throws ``ContainerEngineError`` with
    /// `engine_unreachable` when the engine does not answer.
    public func info() async throws -> EngineInfo {
        let scope = try makeScope(credentials: [])
        defer { scope.remove() }
        let docker = try dockerCLI(scope)
        let dockerVersion = try await docker.serverVersion()
        let compose = try await composeCommand(docker: docker, scope: scope)
        let composeVersion = try await version(of: compose, scope: scope)
        return EngineInfo(dockerVersion: dockerVersion, composeFlavour: compose.flavour, composeVersion: composeVersion)
    }

    /// Deploys a stack: pull, record running images, `up -d --remove-orphans`, wait for health,
    /// and roll back to the recorded images on failure.
    public func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
        var logger = self.logger
        logger[metadataKey: "stack.id"] = "\(deployment.stackId)"
        logger.info("deploy started", metadata: ["stack.project": "\(deployment.projectName)"])
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await runJob(
            stackId: deployment.stackId,
            projectName: deployment.projectName,
            environment: deployment.environment,
            credentials: deployment.credentials,
            logger: logger,
            log: log
        ) { job in
            try await job.deploy(deployment)
        }
        logger.info(
            "deploy finished",
            metadata: [
                "job.state": "\(outcome.state.rawValue)",
                "job.error": "\(outcome.errorCode?.rawValue ?? "")",
                "job.duration": "\(clock.now - start)",
            ]
        )
        return outcome
    }

    /// Removes a stack: `down --remove-orphans` (volumes are kept), its rollback tags, and its directory.
    public func remove(
        stackId: String,
        projectName: String,
        compose: String,
        environment: [String: String],
        log: @escaping @Sendable (String) -> Void
    ) async -> DeployOutcome {
        var logger = self.logger
        logger[metadataKey: "stack.id"] = "\(stackId)"
        logger.info("remove started", metadata: ["stack.project": "\(projectName)"])
        let outcome = await runJob(
            stackId: stackId,
            projectName: projectName,
            environment: environment,
            credentials: [],
            logger: logger,
            log: log
        ) { job in
            try await job.remove(compose: compose)
        }
        logger.info("remove finished", metadata: ["job.state": "\(outcome.state.rawValue)"])
        return outcome
    }

    // MARK: - Jobs

    /// Validates the names, creates the job's `DOCKER_CONFIG`, starts checking that the engine answers,
    /// runs `body`, and always deletes the `DOCKER_CONFIG` afterwards.
    private func runJob(
        stackId: String,
        projectName: String,
        environment: [String: String],
        credentials: [RegistryCredential],
        logger: Logger,
        log sink: @escaping @Sendable (String) -> Void,
        _ body: (StackJob) async throws -> DeployOutcome
    ) async -> DeployOutcome {
        let log = JobLog(totalLimit: configuration.maxLogBytes, sink: sink)
        if let problem = Self.nameProblem(stackId: stackId, projectName: projectName, environment: environment) {
            log.step("failed: invalid_stack: \(problem)")
            return .failed(.invalidStack, problem)
        }
        do {
            let scope = try makeScope(credentials: credentials)
            defer { scope.remove() }
            let docker = try dockerCLI(scope)
            // The engine is checked alongside what needs none (finding compose, validating the file);
            // the job waits for the answer before its first call to the engine (``StackJob/engineAnswers()``).
            let engineCheck = Task { try await docker.serverVersion() }
            defer { engineCheck.cancel() }
            let compose = try await composeCommand(docker: docker, scope: scope)
            log.step("using \(compose.displayName) on \(configuration.dockerHost)")

            var stackEnvironment = environment
            for key in environment.keys.sorted() where StackVariables.isReserved(key) {
                stackEnvironment[key] = nil
                log.step("ignoring stack variable \(key): it would change which engine or tools compose uses, or how they run")
            }
            let job = StackJob(
                project: projectName,
                files: StackFiles(stacksDirectory: configuration.stacksDirectory, stackId: stackId),
                compose: compose,
                stackEnvironment: stackEnvironment,
                baseEnvironment: baseEnvironment(scope),
                docker: docker,
                engineCheck: engineCheck,
                log: log,
                logger: logger,
                configuration: configuration
            )
            let outcome = try await body(job)
            if let code = outcome.errorCode {
                log.step("\(outcome.state.rawValue): \(code.rawValue): \(outcome.errorMessage ?? "")")
            } else {
                log.step(outcome.state.rawValue)
            }
            return outcome
        } catch let error as ContainerEngineError {
            log.step("failed: \(error.code.rawValue): \(error.message)")
            return .failed(error.code, error.message)
        } catch is CancellationError {
            log.step("failed: the job was cancelled")
            return .failed(.composeFailed, "the job was cancelled")
        } catch {
            log.step("failed: \(error)")
            return .failed(.composeFailed, "\(error)")
        }
    }

    /// Why a stack ID, project name or variable name cannot be used, if one cannot.
    static func nameProblem(stackId: String, projectName: String, environment: [String: String]) -> String? {
        if !StackFiles.isValidName(stackId) {
            return "stack ID \"\(stackId)\" is not valid: use [a-z0-9][a-z0-9_-]*"
        }
        if !StackFiles.isValidName(projectName) {
            return "stack name \"\(projectName)\" is not valid: use [a-z0-9][a-z0-9_-]*"
        }
        if let bad = environment.keys.sorted().first(where: { !StackFiles.isValidVariableName($0) }) {
            return "variable name \"\(bad)\" is not valid: use [A-Za-z_][A-Za-z0-9_]*"
        }
        return nil
    }


    private func makeScope(credentials: [RegistryCredential]) throws -> JobDockerConfig {
        try JobDockerConfig.create(
            under: configuration.scratchDirectory,
            credentials: credentials,
            pluginDirectory: configuration.pluginDirectory
        )
    }

    /// `PATH`, `DOCKER_HOST` and the job's `DOCKER_CONFIG`: all a child gets besides the stack's variables.
    private func baseEnvironment(_ scope: JobDockerConfig) -> [String: String] {
        [
            "PATH": configuration.searchPath,
            "DOCKER_HOST": configuration.dockerHost,
            "DOCKER_CONFIG": scope.directory.path,
        ]
    }

    private func dockerCLI(_ scope: JobDockerConfig) throws -> DockerCLI {
        let executable = configuration.dockerExecutable ?? ExecutableLookup.find("docker", searchPath: configuration.searchPath)
        guard let executable, FileManager.default.isExecutableFile(atPath: executable) else {
            throw ContainerEngineError(
                .engineUnreachable,
                "the docker CLI was not found (searched \(configuration.dockerExecutable ?? configuration.searchPath))"
            )
        }
        return DockerCLI(
            executable: executable,
            runner: CommandRunner(environment: baseEnvironment(scope)),
            timeout: configuration.queryTimeout
        )
    }

    // MARK: - Compose detection

    /// The configured compose command, or the detected one (cached once found).
    private func composeCommand(docker: DockerCLI, scope: JobDockerConfig) async throws -> ComposeCommand {
        if let words = configuration.composeCommand {
            guard
                let command = ComposeCommand.explicit(
                    words,
                    dockerExecutable: docker.executable,
                    searchPath: configuration.searchPath
                )
            else {
                throw ContainerEngineError(
                    .composeFailed,
                    "the compose command \"\(words.joined(separator: " "))\" was not found on PATH"
                )
            }
            // Checked once, like a detected one: `--compose-command "docker compose"` on a node without
            // the plugin would otherwise fail every job as if its compose file were invalid.
            if let cached = detected.value.withLock({ $0 }) { return cached }
            var checked = command
            do {
                let found = try await version(of: command, scope: scope)
                checked.upTakesPull = ComposeCommand.upTakesPull(version: found)
                if command.isPluginThroughDocker(dockerExecutable: docker.executable),
                   let binary = await pluginBinary(version: found, scope: scope) {
                    checked = binary
                }
            } catch let error as ContainerEngineError {
                throw ContainerEngineError(
                    .composeFailed,
                    "the compose command \"\(words.joined(separator: " "))\" does not work on this node: \(error.message)"
                )
            }
            detected.value.withLock { $0 = checked }
            return checked
        }
        if let cached = detected.value.withLock({ $0 }) { return cached }
        let plugin = ComposeCommand(flavour: .plugin, executable: docker.executable, prefix: ["compose"])
        var found: ComposeCommand?
        if let version = try? await version(of: plugin, scope: scope) {
            found = await pluginBinary(version: version, scope: scope) ?? plugin
        } else if let standalone = ExecutableLookup.find("docker-compose", searchPath: configuration.searchPath) {
            var command = ComposeCommand(flavour: .standalone, executable: standalone, prefix: [])
            if let version = try? await version(of: command, scope: scope) {
                command.upTakesPull = ComposeCommand.upTakesPull(version: version)
                found = command
            }
        }
        guard let found else {
            throw ContainerEngineError(
                .composeFailed,
                "no compose CLI: neither the docker compose plugin nor docker-compose works on this node"
            )
        }
        logger.info("compose detected", metadata: ["compose.command": "\(found.displayName)"])
        detected.value.withLock { $0 = found }
        return found
    }

    /// The binary `docker compose` runs, run directly (``ComposeCommand/pluginBinary(_:)``): the
    /// first of the docker CLI's plugin directories that has one, if it reports the `version` that
    /// `docker compose` reported; nil (keep going through the docker CLI) otherwise.
    private func pluginBinary(version: String, scope: JobDockerConfig) async -> ComposeCommand? {
        guard let path = ComposeCommand.pluginBinaryCandidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        let binary = ComposeCommand.pluginBinary(path)
        guard let direct = try? await self.version(of: binary, scope: scope), direct == version else { return nil }
        return binary
    }

    /// `compose version --short`.
    private func version(of compose: ComposeCommand, scope: JobDockerConfig) async throws -> String {
        let runner = CommandRunner(environment: baseEnvironment(scope))
        let result = try await runner.run(
            compose.executable,
            compose.prefix + ["version", "--short"],
            timeout: configuration.queryTimeout,
            captureLimit: 64 * 1024
        )
        let version = result.standardOutput.trimmingWhitespace()
        guard result.succeeded, !version.isEmpty else {
            throw ContainerEngineError(
                .composeFailed,
                "\(compose.displayName) version failed (\(result.endDescription)): \(result.lastLines(5))"
            )
        }
        return version
    }
}

/// The compose command found by detection, kept for the engine's lifetime.
private final class DetectedCompose: Sendable {
    let value = Mutex<ComposeCommand?>(nil)
}
