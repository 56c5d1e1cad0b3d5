import Foundation
import WharfTestSupport
import Logging
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// A real server link (SQLite file, CURVE ROUTER, ZAP) in this process, on a temp dir and a free port.
final class LinkHarness: Sendable {
    let directory: URL
    let store: SQLiteStore
    let keys: AgentKeyRegistry
    let context: ZMQContext
    let serverKeys: CurveKeyPair
    let dispatcher: Dispatcher
    let runner: Task<Void, Never>

    /// `database`, if given, is called with the database file's path before the store opens it
    /// (to leave there what an older server wrote).
    init(maxSockets: Int32 = 4096, agentTimeout: Duration = .seconds(10), maxInFlight: Int = 64,
         resendAfter: Duration = .seconds(2), pingsPerSecond: Int = 1_000, askedTimeoutCap: Duration? = nil,
         database: ((String) throws -> Void)? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-link-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try database?(directory.appendingPathComponent("wharf.sqlite").path)
        store = try SQLiteStore(path: directory.appendingPathComponent("wharf.sqlite").path)
        keys = AgentKeyRegistry()
        context = try ZMQContext(maxSockets: maxSockets)
        serverKeys = try CurveKeyPair.generate()
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        var timing = Dispatcher.Timing()
        timing.resendAfter = resendAfter
        timing.agentTimeout = agentTimeout
        timing.maxInFlight = maxInFlight
        timing.pingsPerSecond = pingsPerSecond
        if let askedTimeoutCap { timing.askedTimeoutCap = askedTimeoutCap }
        dispatcher = try Dispatcher(store: store, keys: keys, context: context, serverKeys: serverKeys,
                                    bind: "tcp://127.0.0.1:*", timing: timing, logger: logger)
        let dispatcher = self.dispatcher
        runner = Task { await dispatcher.run() }
    }

    /// Creates an environment and enrols a new agent key in it, as the HTTP enrolment does.
    func enrolledEnvironment(name: String = "env-\(UUID().uuidString.prefix(8))") async throws -> (Environment, CurveKeyPair) {
        let (environment, token) = try await store.createEnvironment(name: name, type: .agent)
        let pair = try CurveKeyPair.generate()
        _ = try await store.enrol(joinToken: token, publicKey: pair.publicKey.z85, hostname: "test", version: "test")
        keys.enrol(key: pair.publicKey, environmentId: environment.id)
        return (environment, pair)
    }

    /// Creates a stack whose first deploy is queued.
    func stack(_ name: String, on environmentId: String, env: [String: String] = [:]) async throws -> (Stack, Job) {
        let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:v1\n"
        let result = try await store.createStack(
            name: name, environmentId: environmentId, compose: compose, env: env,
            plan: [PlannedService(name: "web", image: "127.0.0.1:5000/demo/web:v1")],
            trigger: JobTrigger(source: "api"), publicURL: "http://127.0.0.1")
        await dispatcher.jobQueued(environmentId: environmentId)
        return result
    }

    /// Queues another deploy of a stack that does not join the queued one.
    func redeploy(_ stackId: String, environmentId: String, variables: [String: String]) async throws -> Job {
        let job = try await store.enqueueJob(stackId: stackId, request: JobRequest(
            kind: .deploy, variables: variables, plan: [PlannedService(name: "web", image: "127.0.0.1:5000/demo/web:v1")],
            trigger: JobTrigger(source: "api"), coalesce: false))
        await dispatcher.jobQueued(environmentId: environmentId)
        return job
    }

    /// An in-process agent with a simulated engine (or `engine`, if given).
    func agent(keys pair: CurveKeyPair, delay: Duration = .zero, journal: URL? = nil, dataDirectory: URL? = nil,
               edge: Bool = false, checkin: Duration = .seconds(1), endpoint: String? = nil,
               serverTimeout: Duration? = nil, engine: (any ContainerEngine)? = nil,
               maxConcurrentStacks: Int? = nil) throws -> (AgentRuntime, Task<Void, any Error>) {
        var configuration = AgentRuntime.Configuration(endpoint: endpoint ?? dispatcher.endpoint, serverKey: serverKeys.publicKey,
                                                       keyPair: pair, hostname: "agent-test")
        if let serverTimeout { configuration.serverTimeout = serverTimeout }
        if let maxConcurrentStacks { configuration.maxConcurrentStacks = maxConcurrentStacks }
        configuration.edge = edge
        configuration.checkinInterval = checkin
        configuration.resultResendInterval = .seconds(1)
        var logger = Logger(label: "test-agent")
        logger.logLevel = .warning
        let data = dataDirectory ?? directory.appendingPathComponent("agent-\(UUID().uuidString)")
        let runtime = AgentRuntime(configuration: configuration, engine: engine ?? SimulatedEngine(delay: delay, journal: journal),
                                   journal: try JobJournal(dataDirectory: data), context: context, logger: logger)
        let task = Task { try await runtime.run() }
        return (runtime, task)
    }

    func stop() async {
        runner.cancel()
        await runner.value
        await dispatcher.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

