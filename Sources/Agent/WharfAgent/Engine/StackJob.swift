import Foundation
import Logging
import WharfProtocol

/// One job on one stack: its files, the compose command, and the job's log and environment.
struct StackJob: Sendable {
    /// The compose project name.
    let project: String
    let files: StackFiles
    let compose: ComposeCommand
    /// The stack's variables compose runs with (without the reserved ones).
    private(set) var stackEnvironment: [String: String]
    /// What compose needs besides the stack's variables: `PATH`, `DOCKER_HOST`, the job's `DOCKER_CONFIG`.
    let baseEnvironment: [String: String]
    let docker: DockerCLI
    /// `docker version`, started with the job: the engine's version, or `engine_unreachable`.
    let engineCheck: Task<String, any Error>
    let log: JobLog
    let logger: Logger
    let configuration: ComposeCLIEngine.Configuration

    /// Waits for the job's engine check: throws `engine_unreachable` when the engine did not answer.
    /// Called before the job's first step that needs the engine, so that an unreachable engine fails
    /// the job before anything of the stack is pulled, queried or changed.
    func engineAnswers() async throws {
        _ = try await engineCheck.value
    }

    /// Runs compose in the stack directory with the stack's variables and what compose needs.
    var composeRunner: CommandRunner {
        CommandRunner(environment: stackEnvironment.merging(baseEnvironment) { _, base in base },
                      workingDirectory: files.directory.path)
    }

    /// This job, with compose run with other stack variables (a rollback's, from ``StackFiles/LastGood``).
    func with(stackEnvironment environment: [String: String]) -> StackJob {
        var copy = self
        copy.stackEnvironment = environment.filter { !StackVariables.isReserved($0.key) }
        return copy
    }

    /// Runs compose on the project with `files`, streaming its output lines to the job log.
    func runCompose(
        _ command: [String],
        files: [String]? = nil,
        timeout: Duration? = nil,
        captureLimit: Int = 0,
        stream: Bool = true
    ) async throws -> CommandResult {
        let arguments = compose.arguments(project: project, files: files ?? self.files.composeFiles, command)
        logger.debug("running compose", metadata: ["compose.arguments": "\(arguments)"])
        let log = self.log
        var sink: (@Sendable (String) -> Void)?
        if stream { sink = { line in log.output(line) } }
        let result = try await composeRunner.run(
            compose.executable,
            arguments,
            timeout: timeout ?? configuration.commandTimeout,
            captureLimit: captureLimit,
            lines: sink
        )
        if !result.succeeded, let line = DockerCLI.engineUnreachableLine(result.tail) {
            throw ContainerEngineError(
                .engineUnreachable,
                "the Docker engine at \(configuration.dockerHost) is unreachable: \(line)"
            )
        }
        return result
    }

    /// A failure message for a compose command: what failed, how it ended, and its last lines.
    func failureMessage(_ what: String, _ result: CommandResult) -> String {
        let tail = result.lastLines(Self.messageLines)
        let head = "\(what) failed (\(result.endDescription))"
        return tail.isEmpty ? head : "\(head): \(tail)"
    }

    /// How many of compose's last output lines an error message quotes.
    static let messageLines = 5

    /// The services `compose.yml` defines, from `compose config --services`; an invalid file is `invalid_stack`.
    ///
    /// This also validates the file: both compose flavours load, interpolate and check it in full
    /// first (schema, `${VAR:?}`, `depends_on`, ports), as `config -q` would.
    func services() async throws -> Set<String> {
        let result = try await runCompose(
            ["config", "--services"],
            files: [StackFiles.composeFileName],
            timeout: configuration.queryTimeout,
            captureLimit: 1 << 20,
            stream: false
        )
        guard result.succeeded else {
            // A timeout says nothing of the file: compose or the engine is stuck.
            if result.timedOut { throw ContainerEngineError(.composeFailed, failureMessage("compose config", result)) }
            throw ContainerEngineError(.invalidStack, "the compose file is invalid: \(result.lastLines(Self.messageLines))")
        }
        let names = result.standardOutput.split(whereSeparator: \.isNewline)
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty }
        return Set(names)
    }

    /// The project's containers, optionally limited to some services.
    func containers(includeStopped: Bool, services: Set<String>? = nil) async throws -> [ContainerDetails] {
        let all = try await docker.projectContainers(project: project, includeStopped: includeStopped)
        guard let services else { return all }
        return all.filter { services.contains($0.service ?? "") }
    }

    /// Removes the stack: `down --remove-orphans` without `-v`, the rollback tags, then the stack directory.
    func remove(compose text: String) async throws -> DeployOutcome {
        // `down` needs only the services' names: the override from the last deploy is dropped.
        try files.writeCompose(text)
        try files.writeOverride(images: [:], version: nil)
        let services = (try? await services()) ?? []
        try await engineAnswers()
        log.step("stopping and removing containers (volumes are kept)")
        let down = try await runCompose(["down", "--remove-orphans"])
        guard down.succeeded else {
            return .failed(.composeFailed, failureMessage("compose down", down))
        }
        let tags = services.flatMap {
            [StackFiles.rollbackTag(project: project, service: $0), StackFiles.legacyRollbackTag(project: project, service: $0)]
        }
        do {
            try await docker.removeTags(tags)
        } catch {
            // Only disk space is at stake; the stack itself is gone.
            log.step("could not remove rollback tags: \(error)")
        }
        do {
            try files.remove()
        } catch {
            return .failed(.composeFailed, "could not delete \(files.directory.path): \(error.localizedDescription)")
        }
        return .succeeded([])
    }
}
