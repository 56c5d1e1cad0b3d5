import Foundation
import Testing

@testable import WharfAgent

/// One engine test's world: a driver for a compose flavour, a unique project and image
/// repository, a free port, and cleanup of everything afterwards.
struct Scenario: Sendable {
    let engine: TestEngine
    let docker: TestDocker
    let images: TestImages
    let driver: ComposeCLIEngine
    let sandbox: Sandbox
    /// The stack ID and compose project name.
    let project: String
    /// The loopback port the stack's web service serves on.
    let port: Int
    /// `REGISTRY/<project>/web`, this test's own repository.
    let repository: String

    /// `repository:tag`.
    func image(_ tag: String) -> String { "\(repository):\(tag)" }

    /// A deploy job of this stack; `PORT` is always in the stack's environment.
    func deployment(
        compose: String,
        images: [String: String],
        environment: [String: String] = [:],
        pull: Bool = true,
        credentials: [RegistryCredential] = [],
        healthTimeout: Duration = .seconds(30),
        jobId: String? = nil
    ) -> StackDeployment {
        var environment = environment
        environment["PORT"] = "\(port)"
        return StackDeployment(
            jobId: jobId,
            stackId: project,
            projectName: project,
            compose: compose,
            environment: environment,
            images: images,
            pull: pull,
            credentials: credentials,
            healthTimeout: healthTimeout
        )
    }

    /// Deploys and returns the outcome with the job's log.
    func deploy(_ deployment: StackDeployment) async -> (DeployOutcome, LogRecorder) {
        let recorder = LogRecorder()
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await driver.deploy(deployment, log: recorder.sink)
        if ProcessInfo.processInfo.environment["WHARF_TEST_TIMINGS"] != nil {
            print("[timing] \(project) \(outcome.state.rawValue) \(outcome.errorCode?.rawValue ?? "") in \(clock.now - start)")
        }
        if ProcessInfo.processInfo.environment["WHARF_TEST_SHOW_LOGS"] != nil {
            print(recorder.lines.map { "[\(project)] \($0)" }.joined(separator: "\n"))
        }
        return (outcome, recorder)
    }

    /// Deploys, and cancels the deploy once it logs a line that `cutWhen` matches, as the agent's
    /// stop cuts a job short at the end of its grace period; returns the outcome with the job's log.
    func deploy(_ deployment: StackDeployment, cutWhen matches: (String) -> Bool) async -> (DeployOutcome, LogRecorder) {
        let (task, recorder, ended) = start(deployment)
        while !ended.value, !recorder.lines.contains(where: matches) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        task.cancel()
        let outcome = await task.value
        if ProcessInfo.processInfo.environment["WHARF_TEST_SHOW_LOGS"] != nil {
            print(recorder.lines.map { "[\(project) cut] \($0)" }.joined(separator: "\n"))
        }
        return (outcome, recorder)
    }

    /// Deploys, and runs `action` once, while the deploy goes on, when it logs a line that `when`
    /// matches; returns the outcome with the job's log, and what `action` returned (nil if no line matched).
    func deploy<T: Sendable>(_ deployment: StackDeployment, when matches: @escaping @Sendable (String) -> Bool,
                             do action: @escaping @Sendable () throws -> T) async throws -> (DeployOutcome, LogRecorder, T?) {
        let (task, recorder, ended) = start(deployment)
        var result: T?
        while !ended.value {
            if recorder.lines.contains(where: matches) {
                do {
                    result = try action()
                } catch {
                    _ = await task.value
                    throw error
                }
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let outcome = await task.value
        if ProcessInfo.processInfo.environment["WHARF_TEST_SHOW_LOGS"] != nil {
            print(recorder.lines.map { "[\(project)] \($0)" }.joined(separator: "\n"))
        }
        return (outcome, recorder, result)
    }

    /// Starts a deploy in a task, for a caller that watches its log while it runs; `ended` turns
    /// true once the deploy has returned.
    private func start(_ deployment: StackDeployment) -> (task: Task<DeployOutcome, Never>, recorder: LogRecorder, ended: MutexBox<Bool>) {
        let recorder = LogRecorder()
        let ended = MutexBox(false)
        let driver = self.driver
        let task = Task {
            let outcome = await driver.deploy(deployment, log: recorder.sink)
            ended.update { $0 = true }
            return outcome
        }
        return (task, recorder, ended)
    }

    /// The stack's directory on the agent.
    var stackDirectory: URL { sandbox.stacks.appendingPathComponent(project) }

    /// The IDs of the project's running containers.
    func runningContainers() async throws -> [String] {
        try await docker.containers(project: project)
    }

    /// Runs `body` in a fresh scenario for `flavour` and cleans the engine up afterwards.
    static func run(
        _ flavour: ComposeFlavour?,
        _ prefix: String,
        _ body: (Scenario) async throws -> Void
    ) async throws {
        let engine = try TestEngine.fromEnvironment()
        let project = uniqueStackName("\(prefix)-\(flavour.map { $0 == .plugin ? "v2" : "v1" } ?? "auto")")
        try await withSandbox { sandbox in
            let docker = try TestDocker.make(engine, in: sandbox)
            let scenario = Scenario(
                engine: engine,
                docker: docker,
                images: TestImages(docker: docker),
                driver: engine.makeEngine(flavour: flavour, sandbox: sandbox),
                sandbox: sandbox,
                project: project,
                port: try freeLoopbackPort(),
                repository: "\(engine.registry)/\(project)/web"
            )
            try await withProject(docker, project) {
                try await body(scenario)
            }
        }
    }
}

/// Compose texts for the test stacks: busybox httpd on the host network, on `${PORT}`.
enum TestStacks {
    /// How the web service is health-checked.
    enum Probe {
        case none
        /// `wget /health` every second; a start period keeps it `starting` while it fails.
        case http(startPeriod: String?)
    }

    static func web(
        image: String,
        probe: Probe = .none,
        version: String? = nil,
        environment: [String] = [],
        volume: Bool = false,
        worker: String? = nil,
        pullPolicy: String? = nil,
        build: String? = nil
    ) -> String {
        var yaml = ""
        if let version { yaml += "version: \"\(version)\"\n" }
        yaml += """
            services:
              web:
                image: \(image)
                network_mode: host
                init: true

            """
        if let pullPolicy { yaml += "    pull_policy: \(pullPolicy)\n" }
        if let build { yaml += "    build: \(build)\n" }
        yaml += """
                environment:
                  - PORT=${PORT}

            """
        for line in environment { yaml += "      - \(line)\n" }
        if case .http(let startPeriod) = probe {
            yaml += """
                    healthcheck:
                      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${PORT}/health"]
                      interval: 1s
                      timeout: 10s
                      retries: 2

                """
            if let startPeriod { yaml += "      start_period: \(startPeriod)\n" }
        }
        if let worker {
            yaml += """
                  worker:
                    image: \(worker)
                    network_mode: host
                    init: true

                """
        }
        if volume {
            yaml += """
                    volumes:
                      - data:/data
                volumes:
                  data: {}

                """
        }
        return yaml
    }
}
