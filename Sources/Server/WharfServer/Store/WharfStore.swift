import Foundation
import WharfProtocol

/// Everything the HTTP handlers and the dispatcher need from storage.
///
/// `SQLiteStore` (GRDB, one file) is the embedded implementation; another database (PostgreSQL)
/// can implement this protocol without touching the handlers. Every write that the API
/// acknowledges is durable when the call returns, but for one: a call that joins a queued job
/// and changes nothing of it but its `coalesced` count may be counted in memory until the job
/// moves on (see `SQLiteStore.enqueueJob`).
public protocol WharfStore: Sendable {
    // Environments and enrolment
    func createEnvironment(name: String, type: EnvironmentType, joinTokenTTL: TimeInterval) async throws -> (Environment, String)
    func createJoinToken(environmentId: String, ttl: TimeInterval) async throws -> String
    func environments() async throws -> [Environment]
    func environment(id: String) async throws -> Environment
    func deleteEnvironment(id: String) async throws
    func enrol(joinToken: String, publicKey: String, hostname: String, version: String) async throws -> Environment
    func agentKeys() async throws -> [String: (environmentId: String, type: EnvironmentType)]
    func touchEnvironments(ids: [String], at date: Date) async throws

    // Stacks and webhooks
    /// `healthTimeout`: seconds, nil for the default (`Stack.defaultHealthTimeout`).
    func createStack(name: String, environmentId: String, compose: String, env: [String: String], healthTimeout: Int?,
                     plan: [PlannedService], trigger: JobTrigger, publicURL: String) async throws -> (Stack, Job)
    func stack(id: String, publicURL: String) async throws -> Stack
    func stacks(environmentId: String?, publicURL: String) async throws -> [Stack]
    /// `healthTimeout`: the new one in seconds, nil to keep the stack's.
    func updateStack(id: String, compose: String, env: [String: String], healthTimeout: Int?, clearPins: Bool,
                     request: JobRequest) async throws -> Job
    func pins(stackId: String) async throws -> [String: String]
    /// Deletes a stack without its agent: its unfinished jobs end `failed` (`stack_forgotten`) and
    /// its row goes, containers untouched. Returns the ids of the jobs it ended.
    func forgetStack(id: String) async throws -> [String]
    func setWebhookToken(stackId: String, token: String?, publicURL: String) async throws -> Stack
    /// `setWebhookToken`, except that with `keepExisting` a stack that has a token keeps it.
    func setWebhookToken(stackId: String, token: String?, keepExisting: Bool, publicURL: String) async throws -> (stack: Stack, changed: Bool)
    func stack(webhookToken: String, publicURL: String) async throws -> (stack: Stack, pins: [String: String])?
    /// The stack behind a webhook token and its pins, only if known without reading the store.
    func cachedStack(webhookToken: String, publicURL: String) -> (stack: Stack, pins: [String: String])?

    // Jobs
    /// Queues a job (or joins the stack's queued deploy); with `connected`, a new job whose stack has
    /// no other unfinished job and whose environment is in it is claimed for its agent in the same
    /// transaction (`ConnectedAgents`). The request's registry event ids are recorded for the stack
    /// in the same transaction; if the stack has seen them all, it throws `event_already_received`
    /// and writes nothing (`JobRequest.eventIds`).
    func enqueueJob(stackId: String, request: JobRequest, claimingFor connected: ConnectedAgents?) async throws -> Enqueued
    /// `enqueueJob` for a caller that cannot wait in a task (the webhook lane, on an event loop):
    /// `completion` gets the outcome once, on any thread, when the job is on disk (or at once for
    /// a join in memory).
    func enqueueJob(stackId: String, request: JobRequest, claimingFor connected: ConnectedAgents?,
                    completion: @escaping @Sendable (Result<Enqueued, any Error>) -> Void)
    /// Which of a registry's event `ids` the stack has received before.
    func receivedRegistryEvents(stackId: String, ids: [String]) async throws -> Set<String>
    /// Joins the stack's queued deploy in memory when that changes nothing but its count (what
    /// `enqueueJob` would do first); nil when the request needs the writer.
    func joinQueuedDeploy(stackId: String, request: JobRequest) -> Job?
    func job(id: String) async throws -> JobRecord
    func jobs(stackId: String?, state: JobState?, limit: Int) async throws -> [Job]
    func jobLog(jobId: String) async throws -> String
    func jobCounts() async throws -> [JobState: Int]

    // The link: each batch of agent messages and each dispatch round is one transaction. With
    // `connected`, a queued job next in line after one a result ended is claimed in the batch's.
    func applyAgentBatch(_ batch: AgentBatch, at date: Date, claimingFor connected: ConnectedAgents?) async throws -> AgentBatchOutcome
    func claimDispatch(_ requests: [DispatchRequest]) async throws -> [DispatchClaim]

    // Registries
    func addRegistry(url: String, username: String, password: String) async throws -> Registry
    func registries() async throws -> [Registry]
    func deleteRegistry(id: String) async throws

    // Health
    /// Why the store cannot be used now, or `nil` when it can; cheap (no write).
    func healthProblem() async -> StoreHealthProblem?
}

extension WharfStore {
    /// Queues a job (or joins the stack's queued deploy) for the dispatcher's next round.
    public func enqueueJob(stackId: String, request: JobRequest) async throws -> Job {
        try await enqueueJob(stackId: stackId, request: request, claimingFor: nil).job
    }

    /// Creates an environment whose first join token lasts 24 h.
    public func createEnvironment(name: String, type: EnvironmentType) async throws -> (Environment, String) {
        try await createEnvironment(name: name, type: type, joinTokenTTL: 86_400)
    }

    /// Issues a join token that lasts 24 h.
    public func createJoinToken(environmentId: String) async throws -> String {
        try await createJoinToken(environmentId: environmentId, ttl: 86_400)
    }
}

extension SQLiteStore: WharfStore {}

/// What `WharfStore.enqueueJob` made of a request.
public struct Enqueued: Sendable {
    /// The new or joined job, as stored.
    public var job: Job
    /// The job as its agent gets it, when it was claimed at once (state `dispatched`): the caller
    /// hands it to the dispatcher (`Dispatcher.handOver`).
    public var claimed: JobSpec?

    public init(job: Job, claimed: JobSpec? = nil) {
        self.job = job
        self.claimed = claimed
    }
}
