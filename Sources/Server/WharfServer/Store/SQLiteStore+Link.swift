import Foundation
import GRDB
import WharfProtocol

/// What one batch of agent messages asks of the store, applied in one transaction.
public struct AgentBatch: Sendable {
    public struct Hello: Sendable {
        public var environmentId: String
        public var info: AgentInfo
        /// The jobs the agent says it holds and has not finished (`AgentHello.holding`).
        public var holding: [String] = []
    }
    public struct JobEvent: Sendable {
        public var jobId: String
        public var environmentId: String
    }
    public struct Log: Sendable {
        public var chunk: LogChunk
        public var environmentId: String
    }
    public struct Result: Sendable {
        public var result: JobResult
        public var environmentId: String
    }

    public var hellos: [Hello] = []
    /// Jobs the agents have on disk (`ack`).
    public var acks: [JobEvent] = []
    /// Jobs the agents started.
    public var started: [JobEvent] = []
    public var logs: [Log] = []
    public var results: [Result] = []
    /// Environments whose count of open jobs is wanted after the batch.
    public var countOpen: Set<String> = []

    public init() {}

    /// Whether there is nothing to store.
    public var isEmpty: Bool {
        hellos.isEmpty && acks.isEmpty && started.isEmpty && logs.isEmpty && results.isEmpty && countOpen.isEmpty
    }
}

/// What became of an `AgentBatch`.
public struct AgentBatchOutcome: Sendable {
    public enum ResultOutcome: Sendable {
        /// Stored; `ended` is false for a repeat of a result already stored.
        case stored(Job, ended: Bool)
        /// Not a job of that environment.
        case unknown
        /// Not stored (the agent keeps it and sends it again).
        case failed(String)
    }

    /// One per `AgentBatch.results`, in the same order.
    public var results: [ResultOutcome] = []
    /// Environments where a result ended a job whose stack has another unfinished job, which may go
    /// to the agent now (or where a repeated result was seen, to be safe), and that job was not
    /// claimed in the batch (`claimed`).
    public var nextJobs: Set<String> = []
    /// Jobs claimed in the batch's transaction: each the next job of a stack whose job a result
    /// ended, queued until then, its environment's agent connected (`applyAgentBatch(_:at:claimingFor:)`).
    public var claimed: [(environmentId: String, spec: JobSpec)] = []
    /// Open jobs per environment in `AgentBatch.countOpen`, after the batch.
    public var openCounts: [String: Int] = [:]
    /// Per environment, the jobs its agent's hello says it holds that are not open jobs of that
    /// environment: ended without the agent (`agent_lost`, a stack removed with `--forget`) or
    /// unknown here. The agent is told not to run them (`ServerMessage.cancel`).
    public var endedHeld: [String: [String]] = [:]

    public init() {}
}

/// One environment's turn in a dispatch round.
public struct DispatchRequest: Sendable {
    public var environmentId: String
    /// Jobs not to send now: the agent holds them, or they were sent a moment ago.
    public var skip: Set<String>
    /// How many jobs may be sent.
    public var capacity: Int

    public init(environmentId: String, skip: Set<String>, capacity: Int) {
        self.environmentId = environmentId
        self.skip = skip
        self.capacity = capacity
    }
}

/// The jobs to send to one environment's agent, already moved out of `queued`.
public struct DispatchClaim: Sendable {
    public var environmentId: String
    /// In queue order, each with the credentials of the registries its images come from.
    public var jobs: [JobSpec]
    /// The environment's unfinished jobs.
    public var openCount: Int
}

extension SQLiteStore {
    /// Each stack's oldest unfinished job in one environment, in queue order.
    static let dispatchHeadsSQL = """
        SELECT j.id, j.state FROM job j WHERE j.environment_id = ? AND j.state NOT IN \(finalStates)
        AND j.seq = (SELECT MIN(seq) FROM job k WHERE k.stack_id = j.stack_id AND k.state NOT IN \(finalStates))
        ORDER BY j.seq
        """

    static let openJobOfEnvironmentSQL = "SELECT 1 FROM job WHERE id = ? AND environment_id = ? AND state NOT IN \(finalStates)"

    /// Applies a batch of agent messages in one write transaction: hellos, acknowledgements, starts,
    /// log chunks, then results (each result in its own savepoint, so one bad result does not undo
    /// the others).
    ///
    /// With `connected`, a result that ends a job whose stack has a queued job next claims that job
    /// in the same transaction when the environment is in `connected` (`AgentBatchOutcome.claimed`):
    /// what the dispatcher's next round would do with it, without a round.
    public func applyAgentBatch(_ batch: AgentBatch, at date: Date, claimingFor connected: ConnectedAgents? = nil) async throws -> AgentBatchOutcome {
        try await db.write { db in
            var endedHeld: [String: [String]] = [:]
            for hello in batch.hellos {
                try db.cachedStatement(sql: "UPDATE environment SET agent_info = ?, last_seen_at = ? WHERE id = ?")
                    .execute(arguments: [JSONColumn.encode(hello.info), date.column, hello.environmentId])
                for jobId in hello.holding {
                    let open = try Bool.fetchOne(db.cachedStatement(sql: Self.openJobOfEnvironmentSQL),
                                                 arguments: [jobId, hello.environmentId]) ?? false
                    if !open { endedHeld[hello.environmentId, default: []].append(jobId) }
                }
            }
            for ack in batch.acks {
                try self.foldJoins(db, self.joinable.take(jobId: ack.jobId))
                try db.cachedStatement(sql: "UPDATE job SET state = 'dispatched' WHERE id = ? AND environment_id = ? AND state = 'queued'")
                    .execute(arguments: [ack.jobId, ack.environmentId])
            }
            for start in batch.started {
                try self.foldJoins(db, self.joinable.take(jobId: start.jobId))
                try db.cachedStatement(sql: """
                    UPDATE job SET state = 'running', started_at = COALESCE(started_at, ?)
                    WHERE id = ? AND environment_id = ? AND state IN ('queued','dispatched')
                    """).execute(arguments: [date.column, start.jobId, start.environmentId])
            }
            for log in batch.logs {
                try self.appendLog(db, log.chunk, environmentId: log.environmentId)
            }
            var outcome = AgentBatchOutcome()
            outcome.endedHeld = endedHeld
            outcome.results.reserveCapacity(batch.results.count)
            var registries: [RegistryAuth]?
            for item in batch.results {
                var stored: AgentBatchOutcome.ResultOutcome = .unknown
                var claimed: JobSpec?
                do {
                    try db.inSavepoint {
                        if let (job, ended, next) = try self.finish(db, result: item.result, environmentId: item.environmentId, at: date) {
                            stored = .stored(job, ended: ended)
                            if next, ended, connected?.contains(item.environmentId) == true {
                                claimed = try self.claimQueuedHead(db, stackId: job.stackId, registries: &registries)
                            }
                            if next, claimed == nil { outcome.nextJobs.insert(item.environmentId) }
                        }
                        return .commit
                    }
                } catch {
                    stored = .failed("\(error)")
                    claimed = nil  // Undone with the savepoint.
                }
                outcome.results.append(stored)
                if let claimed { outcome.claimed.append((item.environmentId, claimed)) }
            }
            for environmentId in batch.countOpen {
                outcome.openCounts[environmentId] = try self.openJobCount(db, environmentId: environmentId)
            }
            return outcome
        }
    }

    /// Picks each environment's due jobs (each stack's oldest unfinished job, in queue order, less
    /// `skip`, at most `capacity`), moves the queued ones to `dispatched`, and returns them as the
    /// agent will get them — all in one write transaction, so a webhook joins a job before it is
    /// claimed (and is in what is sent) or after (and makes a new job), never in between.
    public func claimDispatch(_ requests: [DispatchRequest]) async throws -> [DispatchClaim] {
        guard !requests.isEmpty else { return [] }
        return try await db.write { db in
            var claims: [DispatchClaim] = []
            claims.reserveCapacity(requests.count)
            var registries: [RegistryAuth]?
            for request in requests {
                var jobs: [JobSpec] = []
                if request.capacity > 0 {
                    let heads = try Row.fetchAll(db.cachedStatement(sql: Self.dispatchHeadsSQL), arguments: [request.environmentId])
                    for head in heads {
                        let id: String = head["id"]
                        if request.skip.contains(id) { continue }
                        if jobs.count >= request.capacity { break }
                        // A queued head is claimed and read in one statement; one sent before (a resend) is read.
                        try self.foldJoins(db, self.joinable.take(jobId: id))
                        let sql = (head["state"] as String) == JobState.queued.rawValue
                            ? Self.claimQueuedSQL
                            : "SELECT \(Self.jobSpecColumns) FROM job WHERE id = ?"
                        if registries == nil { registries = try self.registryAuths(db) }
                        let auths = registries ?? []
                        guard let spec = try Row.readFirst(db.cachedStatement(sql: sql), arguments: [id], { row in
                            Self.jobSpec(row, id: id, registries: auths)
                        }) else { continue }
                        jobs.append(spec)
                    }
                }
                claims.append(DispatchClaim(environmentId: request.environmentId, jobs: jobs,
                                            openCount: try self.openJobCount(db, environmentId: request.environmentId)))
            }
            return claims
        }
    }

    /// Claims a stack's oldest unfinished job if it is queued (moves it to `dispatched` and returns it
    /// as its agent gets it); nil when the stack has none, or its head went out already.
    func claimQueuedHead(_ db: Database, stackId: String, registries: inout [RegistryAuth]?) throws -> JobSpec? {
        guard let head = try Row.readFirst(db.cachedStatement(sql: Self.stackHeadSQL), arguments: [stackId], { row -> String? in
            (row["state"] as String) == JobState.queued.rawValue ? row["id"] : nil
        }), let id = head else { return nil }
        try foldJoins(db, joinable.take(jobId: id))
        if registries == nil { registries = try registryAuths(db) }
        let auths = registries ?? []
        return try Row.readFirst(db.cachedStatement(sql: Self.claimQueuedSQL), arguments: [id]) { row in
            Self.jobSpec(row, id: id, registries: auths)
        }
    }

    /// A stack's oldest unfinished job.
    static let stackHeadSQL = "SELECT id, state FROM job WHERE stack_id = ? AND state NOT IN \(finalStates) ORDER BY seq LIMIT 1"
    static let claimQueuedSQL = "UPDATE job SET state = 'dispatched' WHERE id = ? AND state = 'queued' RETURNING \(jobSpecColumns)"

    /// A job as its agent gets it, from a row of `jobSpecColumns`.
    static func jobSpec(_ row: Row, id: String, registries: [RegistryAuth]) -> JobSpec {
        jobSpec(id: id, kind: JobKind(rawValue: row["kind"]) ?? .deploy, stackId: row["stack_id"],
                stackName: row["stack_name"], compose: row["compose"],
                env: JSONColumn.decode([String: String].self, row["env"]) ?? [:],
                plan: JSONColumn.decode(JobPlan.self, row["plan"]) ?? JobPlan(services: []),
                pull: row["pull"], healthTimeout: row["health_timeout"], registries: registries)
    }

    /// What a `JobSpec` is made of.
    static let jobSpecColumns = "id, kind, stack_id, stack_name, compose, env, pull, plan, health_timeout"

    /// A job as its agent gets it, with the credentials among `registries` that its images need.
    /// `healthTimeout`: the job's (its stack's when it was queued), nil for the default.
    static func jobSpec(id: String, kind: JobKind, stackId: String, stackName: String, compose: String,
                        env: [String: String], plan: JobPlan, pull: Bool, healthTimeout: Int?, registries: [RegistryAuth]) -> JobSpec {
        JobSpec(id: id, kind: kind, stackId: stackId, stackName: stackName, compose: compose, env: env,
                images: Dictionary(plan.services.map { ($0.name, $0.image) }, uniquingKeysWith: { $1 }),
                pull: pull, credentials: credentials(registries, for: plan.services.map(\.image)),
                healthTimeoutSeconds: healthTimeout ?? Stack.defaultHealthTimeout)
    }

    func openJobCount(_ db: Database, environmentId: String) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM job WHERE environment_id = ? AND state NOT IN \(Self.finalStates)"),
                         arguments: [environmentId]) ?? 0
    }
}
