import Foundation
import GRDB
import WharfProtocol

/// A request to queue a job, or to join the stack's queued one.
public struct JobRequest: Sendable {
    public var kind: JobKind
    /// The compose file to deploy; nil keeps the stack's.
    public var compose: String?
    /// Variables to set on top of the stack's env.
    public var variables: [String: String]
    /// Every service's image for this request, planned on the stack's definition: what a new job
    /// deploys when no other deploy of the stack is open.
    public var plan: [PlannedService]
    /// Services whose image this request asks for by name (a tag, a push); on a deploy ahead of it
    /// (`JobRequest.apply(to:env:compose:)`), only these take the image `plan` gives them, while the
    /// variables decide the others' again on that deploy's env.
    public var targeted: Set<String>
    public var pull: Bool
    public var trigger: JobTrigger
    /// Whether the request may join a queued job of the same stack.
    public var coalesce: Bool
    /// The registry notification events this request answers. They are recorded for the stack in
    /// the transaction that queues or joins its job, never apart from it (so a request that fails
    /// leaves them unseen, and the registry's retry runs); a request whose events the stack has
    /// all seen fails with `event_already_received` and writes nothing.
    public var eventIds: [String]
    /// Whether a new job is planned on the stack's newest open deploy, as if that had succeeded,
    /// rather than on the stack's definition alone. False for an edit (`PUT`), which gives the
    /// definition itself.
    public var followsOpenDeploys: Bool

    /// Makes a request.
    public init(kind: JobKind, compose: String? = nil, variables: [String: String] = [:], plan: [PlannedService],
                targeted: Set<String>? = nil, pull: Bool = true, trigger: JobTrigger, coalesce: Bool = true,
                eventIds: [String] = [], followsOpenDeploys: Bool = true) {
        self.kind = kind
        self.compose = compose
        self.variables = variables
        self.plan = plan
        self.targeted = targeted ?? Set(plan.map(\.name))
        self.pull = pull
        self.trigger = trigger
        self.coalesce = coalesce
        self.eventIds = eventIds
        self.followsOpenDeploys = followsOpenDeploys
    }
}

extension SQLiteStore {
    static let finalStates = "('succeeded','failed','rolled_back')"
    /// A job row's columns less `error` and `result` (which `jobRecord(from:)` then leaves nil).
    static let columnsButOutcome = """
        seq, id, stack_id, stack_name, environment_id, kind, state, trigger, coalesced, created_at, started_at,
        finished_at, plan, compose, env, pull
        """

    // A stack's open jobs, through the partial index `job_open_stack` (`StoreIndexTests`): each
    // says `state NOT IN` final so that SQLite may use it, instead of the stack's whole history.
    static let newestOpenDeploySQL = """
        SELECT * FROM job WHERE stack_id = ? AND state NOT IN \(finalStates) AND kind = 'deploy' ORDER BY seq DESC LIMIT 1
        """
    static let newestOpenJobKindSQL = "SELECT kind FROM job WHERE stack_id = ? AND state NOT IN \(finalStates) ORDER BY seq DESC LIMIT 1"
    static let anyOpenJobSQL = "SELECT 1 FROM job WHERE stack_id = ? AND state NOT IN \(finalStates) LIMIT 1"
    /// The stack columns `enqueue(_:stackRow:…)` reads.
    static let enqueueStackColumnsSQL = "SELECT id, name, environment_id, compose, env, revision, status, health_timeout FROM stack WHERE id = ?"

    static func jobRecord(from row: Row) -> JobRecord {
        let job = Job(
            id: row["id"], stackId: row["stack_id"], environmentId: row["environment_id"],
            kind: JobKind(rawValue: row["kind"]) ?? .deploy,
            state: JobState(rawValue: row["state"]) ?? .queued,
            trigger: JSONColumn.decode(JobTrigger.self, row["trigger"]) ?? JobTrigger(source: "api"),
            coalesced: row["coalesced"],
            createdAt: Date(column: row["created_at"])!,
            startedAt: Date(column: row["started_at"]),
            finishedAt: Date(column: row["finished_at"]),
            plan: JSONColumn.decode(JobPlan.self, row["plan"]) ?? JobPlan(services: []),
            error: JSONColumn.decode(JobError.self, row["error"]),
            result: JSONColumn.decode(JobOutcome.self, row["result"])
        )
        return JobRecord(
            job: job, compose: row["compose"],
            env: JSONColumn.decode([String: String].self, row["env"]) ?? [:],
            pull: row["pull"], stackName: row["stack_name"]
        )
    }

    /// Queues a job for a stack, or joins the stack's queued deploy when the request may coalesce.
    ///
    /// Joining merges per service (the newest requested image wins) and per variable (the newest
    /// value wins), and counts the call in `coalesced`. A new deploy behind others of its stack
    /// that are still open (queued, dispatched or running) is planned on the newest of them, as if
    /// it had succeeded, so that it does not undo what that one deploys (`JobRequest.followsOpenDeploys`).
    /// Runs in one transaction with the caller's own checks so that nothing is half-done.
    func enqueue(_ db: Database, stackRow: Row, request: JobRequest, now: Date) throws -> Job {
        var queued = QueuedDeploys()
        let job = try enqueue(db, stackRow: stackRow, request: request, now: now, queued: &queued).job
        try writeJoined(db, &queued)
        return job
    }

    /// `enqueue`, with `queued` remembering each stack's newest queued deploy as this transaction
    /// left it, so that many requests for one stack in one group commit read and decode it once.
    /// A joined job is only changed in `queued`: `writeJoined` writes it, once, before the commit.
    ///
    /// With `connected`, a new job is claimed at once (written `dispatched`, returned as its agent gets
    /// it) when its environment is in `connected` and its stack has no other unfinished job — what
    /// the dispatcher's next round would do with it, in this transaction instead of another.
    func enqueue(_ db: Database, stackRow: Row, request: JobRequest, now: Date, queued: inout QueuedDeploys,
                 claimingFor connected: ConnectedAgents? = nil) throws -> Enqueued {
        let stackId: String = stackRow["id"]
        // A stack whose remove is queued or running takes no new deploy: queued behind the remove, it
        // would bring the containers back and keep the stack the remove was asked to delete.
        // (`queued.removing`: a remove queued earlier in this transaction, which the batch's copy of
        // the stack row does not show.)
        if request.kind == .deploy,
           (stackRow["status"] as String?) == StackStatus.removing.rawValue || queued.removing.contains(stackId) {
            throw StoreError.stackRemoving
        }
        // First, so that a repeated event is refused before anything is written or taken from memory.
        if !request.eventIds.isEmpty { try recordRegistryEvents(db, stackId: stackId, ids: request.eventIds, now: now) }
        if queued.byStack[stackId] == nil {
            // This transaction may change the stack's queued deploy, or queue a newer one (a deploy,
            // or a remove after which no call may join it): the calls that joined it in memory are
            // written first (`JoinableDeploys`).
            try foldJoins(db, joinable.take(stackId: stackId))
        }
        // Whether the stack has an unfinished job, asked once: most webhook calls for a stack that is
        // not busy need no more than this (no queued deploy to join, nothing ahead of a claim).
        var openJob: Bool?
        func anyOpenJob() throws -> Bool {
            if let openJob { return openJob }
            let open = try Bool.fetchOne(db.cachedStatement(sql: Self.anyOpenJobSQL), arguments: [stackId]) == true
            openJob = open
            return open
        }
        // The stack's newest open deploy: the queued one as this transaction left it, else the newest
        // on disk (read only when the stack has an open job). Nil for a stack with none.
        let ahead = request.kind == .deploy
            ? try queued.byStack[stackId]
                ?? (anyOpenJob() ? Row.readFirst(db.cachedStatement(sql: Self.newestOpenDeploySQL), arguments: [stackId],
                                                 Self.jobRecord(from:)) : nil)
            : nil
        if request.coalesce, var record = ahead, record.job.state == .queued {
            // Most joins repeat the call before (a retried CI job, calls piled up behind a write):
            // nothing to merge then, only the count.
            if !request.changesNothing(of: record.job, env: record.env, pull: record.pull) {
                if let compose = request.compose { record.compose = compose }
                try request.apply(to: &record.job.plan, env: &record.env, compose: record.compose)
                let images = record.job.trigger.params["image"]
                record.job.trigger.params.merge(request.trigger.params) { _, new in new }
                if let images, let new = request.trigger.params["image"] {
                    record.job.trigger.params["image"] = JobTrigger.mergedImages(images, new)
                }
                record.pull = record.pull || request.pull
                // What the job does: it pulls when any call that joined it asked for a pull.
                record.job.trigger.params["pullimage"] = record.pull ? nil : "false"
            }
            record.job.coalesced += 1
            queued.byStack[stackId] = record
            queued.joined[record.job.id] = record
            return Enqueued(job: record.job)
        }
        let id = Identifier.make("job")
        var env: [String: String], plan: JobPlan, compose: String
        if let ahead, request.followsOpenDeploys {
            // Planned on the deploy ahead, as a call joining it would be: the stack's definition
            // does not have what that one deploys until it succeeds, and this job runs after it. Were
            // it planned on the definition, its success would undo the one ahead (its images, its
            // variables); if the one ahead fails, this one still deploys what it asked for.
            (env, plan, compose) = (ahead.env, ahead.job.plan, request.compose ?? ahead.compose)
            try request.apply(to: &plan, env: &env, compose: compose)
        } else {
            env = (JSONColumn.decode([String: String].self, stackRow["env"]) ?? [:]).merging(request.variables) { _, new in new }
            if !request.variables.isEmpty { try StackLimits.check(env: env) }
            plan = JobPlan(services: request.plan.sorted { $0.name < $1.name })
            compose = request.compose ?? stackRow["compose"]
        }
        let environmentId: String = stackRow["environment_id"]
        // The stack's, as of now, even for a job planned on a deploy ahead: the timeout is the
        // stack's setting, which only an edit changes, not something a trigger asks for.
        let healthTimeout: Int? = stackRow["health_timeout"]
        // Claimed at once only as the stack's head: a job behind another waits for its round.
        let claim = try connected?.contains(environmentId) == true && !anyOpenJob()
        let state: JobState = claim ? .dispatched : .queued
        try db.cachedStatement(sql: """
            INSERT INTO job (id, stack_id, stack_name, environment_id, kind, state, trigger, created_at, plan, compose, env, pull,
                             revision, health_timeout)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [id, stackId, stackRow["name"], environmentId, request.kind.rawValue, state.rawValue,
                                     JSONColumn.encode(request.trigger), now.column, JSONColumn.encode(plan),
                                     compose, JSONColumn.encode(env), request.pull, stackRow["revision"], healthTimeout])
        try db.cachedStatement(sql: "UPDATE stack SET last_job_id = ?, updated_at = ?, status = ? WHERE id = ?")
            .execute(arguments: [id, now.column, request.kind == .remove ? StackStatus.removing.rawValue : StackStatus.deploying.rawValue, stackId])
        // What was just written, as a read would return it (dates at the column's precision).
        if request.kind == .remove {
            // The deploy queued before it is no longer joinable, in this transaction or, once it has
            // committed, in memory (`writeJoined` publishes `byStack`).
            queued.byStack[stackId] = nil
            queued.removing.insert(stackId)
        }
        let job = Job(id: id, stackId: stackId, environmentId: environmentId, kind: request.kind, state: state,
                      trigger: request.trigger, coalesced: 0, createdAt: Date(column: now.column)!, startedAt: nil,
                      finishedAt: nil, plan: plan, error: nil, result: nil)
        if claim {
            if queued.registries == nil { queued.registries = try registryAuths(db) }
            return Enqueued(job: job, claimed: Self.jobSpec(id: id, kind: request.kind, stackId: stackId, stackName: stackRow["name"],
                                                            compose: compose, env: env, plan: plan, pull: request.pull,
                                                            healthTimeout: healthTimeout, registries: queued.registries ?? []))
        }
        if request.kind == .deploy {
            queued.byStack[stackId] = JobRecord(job: job, compose: compose, env: env, pull: request.pull, stackName: stackRow["name"])
        }
        return Enqueued(job: job)
    }

    /// Writes the jobs that requests joined in this transaction, each once however many joined it,
    /// and makes each stack's queued deploy joinable in memory once the transaction commits.
    func writeJoined(_ db: Database, _ queued: inout QueuedDeploys) throws {
        for record in queued.joined.values {
            try db.cachedStatement(sql: """
                UPDATE job SET plan = ?, env = ?, compose = ?, trigger = ?, coalesced = ?, pull = ? WHERE id = ?
                """).execute(arguments: [JSONColumn.encode(record.job.plan), JSONColumn.encode(record.env), record.compose,
                                 JSONColumn.encode(record.job.trigger), record.job.coalesced, record.pull, record.job.id])
        }
        queued.joined.removeAll()
        if !queued.byStack.isEmpty {
            let records = queued.byStack.values
            db.afterNextTransaction(onCommit: { [joinable] _ in joinable.publish(records) })
        }
    }

    public func joinQueuedDeploy(stackId: String, request: JobRequest) -> Job? {
        joinable.join(stackId: stackId, request)
    }

    /// Queues (or joins) a job for an existing stack; the job is on disk when this returns.
    ///
    /// Group commit: requests that arrive while a write is running wait and go together in the next
    /// transaction, each in its own savepoint (one failing request does not undo the others). Under
    /// load this turns one transaction, fsync and two thread hand-offs per webhook call into a share
    /// of one; alone, a request is written at once.
    ///
    /// A call that would change nothing of the stack's queued deploy but its `coalesced` count joins
    /// it in memory and needs no write at all (`JoinableDeploys`); the count is written with the
    /// job's next change. A request with registry event ids always goes to the writer, which
    /// records them in the transaction that queues or joins its job (`JobRequest.eventIds`).
    ///
    /// With `connected`, a new job that can go to its agent at once is claimed in the same
    /// transaction (`ConnectedAgents`); the caller hands `Enqueued.claimed` to the dispatcher.
    public func enqueueJob(stackId: String, request: JobRequest, claimingFor connected: ConnectedAgents?) async throws -> Enqueued {
        if let job = joinQueuedDeploy(stackId: stackId, request: request) { return Enqueued(job: job) }
        return try await withCheckedThrowingContinuation { continuation in
            submit(EnqueueQueue.Waiting(stackId: stackId, request: request, connected: connected,
                                        done: { continuation.resume(with: $0) }))
        }
    }

    /// `enqueueJob`, for a caller that does not wait in a task (the webhook lane, on an event
    /// loop): `completion` gets the outcome once, at once for a join in memory, else on the
    /// writer's thread once the transaction has committed.
    public func enqueueJob(stackId: String, request: JobRequest, claimingFor connected: ConnectedAgents?,
                           completion: @escaping @Sendable (Result<Enqueued, any Error>) -> Void) {
        if let job = joinQueuedDeploy(stackId: stackId, request: request) { return completion(.success(Enqueued(job: job))) }
        submit(EnqueueQueue.Waiting(stackId: stackId, request: request, connected: connected, done: completion))
    }

    /// Adds a request to the next group commit, and starts the writer if none is running.
    private func submit(_ waiting: EnqueueQueue.Waiting) {
        let lead = enqueues.withLock { queue -> Bool in
            queue.waiting.append(waiting)
            if queue.writing { return false }
            queue.writing = true
            return true
        }
        if lead { Task { await self.writeEnqueued() } }
    }

    private func writeEnqueued() async {
        while true {
            let taken = enqueues.withLock { queue -> [EnqueueQueue.Waiting] in
                defer { queue.waiting.removeAll(keepingCapacity: true) }
                if queue.waiting.isEmpty { queue.writing = false }
                return queue.waiting
            }
            guard !taken.isEmpty else { return }
            // Calls for a busy stack pile up while its next deploy is being written: once that has
            // committed, those that change nothing of it join it in memory, without a transaction.
            // (Requests in one batch all waited together, so any order among them is theirs.)
            var batch: [EnqueueQueue.Waiting] = []
            for waiting in taken {
                if let job = joinQueuedDeploy(stackId: waiting.stackId, request: waiting.request) {
                    waiting.done(.success(Enqueued(job: job)))
                } else {
                    batch.append(waiting)
                }
            }
            guard !batch.isEmpty else { continue }
            let written = batch
            let now = Date()
            do {
                let outcomes = try await db.write { db in
                    if written.contains(where: { !$0.request.eventIds.isEmpty }) { try self.pruneRegistryEventsIfDue(db, now: now) }
                    var queued = QueuedDeploys()
                    var stacks: [String: Row] = [:]
                    func enqueue(_ waiting: EnqueueQueue.Waiting) throws -> Enqueued {
                        // Only the columns `enqueue` reads: the row is copied (and kept for the batch).
                        guard let stackRow = try stacks[waiting.stackId]
                                ?? Row.fetchOne(db.cachedStatement(sql: Self.enqueueStackColumnsSQL), arguments: [waiting.stackId]) else {
                            throw StoreError.notFound("stack")
                        }
                        stacks[waiting.stackId] = stackRow
                        return try self.enqueue(db, stackRow: stackRow, request: waiting.request, now: now, queued: &queued,
                                                claimingFor: waiting.connected)
                    }
                    // Alone, a request needs no savepoint: its failure fails the transaction, and only it.
                    if written.count == 1 {
                        let job = try enqueue(written[0])
                        try self.writeJoined(db, &queued)
                        return [Result<Enqueued, any Error>.success(job)]
                    }
                    let outcomes = written.map { waiting in
                        Result<Enqueued, any Error> {
                            // Joining a job this transaction already holds touches no row: no savepoint
                            // (unless the request records event ids).
                            if waiting.request.kind == .deploy, waiting.request.coalesce, waiting.request.eventIds.isEmpty,
                               let stackRow = stacks[waiting.stackId],
                               queued.byStack[waiting.stackId] != nil {
                                return try self.enqueue(db, stackRow: stackRow, request: waiting.request, now: now, queued: &queued)
                            }
                            var job: Enqueued?
                            let before = queued
                            do {
                                try db.inSavepoint {
                                    job = try enqueue(waiting)
                                    return .commit
                                }
                            } catch {
                                queued = before  // What the savepoint undid is not remembered either.
                                throw error
                            }
                            return job!
                        }
                    }
                    // Joined jobs are written after every request had its turn; if that fails, the
                    // transaction does, and every caller hears of it.
                    try self.writeJoined(db, &queued)
                    return outcomes
                }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.done(outcome) }
            } catch {
                for waiting in batch { waiting.done(.failure(error)) }
            }
        }
    }

    /// One job.
    public func job(id: String) async throws -> JobRecord {
        try await db.read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM job WHERE id = ?"), arguments: [id]) else {
                throw StoreError.notFound("job")
            }
            var record = Self.jobRecord(from: row)
            joinable.overlay(&record.job)
            return record
        }
    }

    /// Jobs, newest first, optionally for one stack and in one state.
    public func jobs(stackId: String?, state: JobState?, limit: Int) async throws -> [Job] {
        try await db.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let stackId { conditions.append("stack_id = ?"); _ = arguments.append(contentsOf: [stackId]) }
            if let state { conditions.append("state = ?"); _ = arguments.append(contentsOf: [state.rawValue]) }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM job \(filter) ORDER BY seq DESC LIMIT ?"), arguments: arguments)
                .map { row in
                    var job = Self.jobRecord(from: row).job
                    joinable.overlay(&job)
                    return job
                }
        }
    }

    /// Stores an agent's result. Returns the job, whether this call ended it (false for a repeat), and
    /// whether its stack has another unfinished job (which may go to the agent now; true for a repeat).
    ///
    /// A succeeded deploy makes the job's env and compose the stack's, unless the stack was edited
    /// after the job was queued (the edit is newer; its own job deploys it); a succeeded remove
    /// deletes the stack. A failed or rolled-back job leaves the stack's definition as it was.
    func finish(_ db: Database, result: JobResult, environmentId: String, at date: Date) throws -> (job: Job, ended: Bool, next: Bool)? {
        let state = JobState(result.state)
        let outcome = JobOutcome(services: result.services)
        try foldJoins(db, joinable.take(jobId: result.jobId))
        // The usual case, an unfinished job of this environment, is ended and read in one statement.
        guard let ended = try Row.readFirst(db.cachedStatement(sql: """
            UPDATE job SET state = ?, finished_at = ?, started_at = COALESCE(started_at, ?), error = ?, result = ?
            WHERE id = ? AND environment_id = ? AND state NOT IN \(Self.finalStates) RETURNING \(Self.columnsButOutcome), revision
            """), arguments: [state.rawValue, date.column, date.column, result.error.map { JSONColumn.encode($0) },
                              JSONColumn.encode(outcome), result.jobId, environmentId],
                          { (record: Self.jobRecord(from: $0), revision: $0["revision"] as Int) }) else {
            // A repeat of a result already stored, or not a job of this environment.
            return try Row.readFirst(db.cachedStatement(sql: "SELECT * FROM job WHERE id = ? AND environment_id = ?"),
                                     arguments: [result.jobId, environmentId]) { (Self.jobRecord(from: $0).job, false, true) }
        }
        var record = ended.record
        (record.job.error, record.job.result) = (result.error, outcome)  // just written; not read back
        let next = try self.applyToStack(db, record: record, revision: ended.revision, result: result, at: date)
        return (record.job, true, next)
    }

    /// Returns whether the stack has another unfinished job. `revision`: the stack's definition
    /// revision when the job was queued (`stack.revision`, which an edit raises).
    private func applyToStack(_ db: Database, record: JobRecord, revision: Int, result: JobResult, at date: Date) throws -> Bool {
        let stackId = record.job.stackId
        // The kind of the stack's newest unfinished job, if another is waiting.
        let nextKind = try String.fetchOne(db.cachedStatement(sql: Self.newestOpenJobKindSQL), arguments: [stackId])
        guard let stack = try Row.readFirst(db.cachedStatement(sql: "SELECT services, compose, env, pins, revision FROM stack WHERE id = ?"),
                                            arguments: [stackId], { row -> (services: String, compose: String, env: String?, pins: String?, revision: Int) in
            (row["services"], row["compose"], row["env"], row["pins"], row["revision"])
        }) else {
            // Gone (a remove deleted it): nothing of it should be unfinished, but the store says.
            return nextKind != nil
        }
        let status: StackStatus
        if let nextKind {
            status = nextKind == JobKind.remove.rawValue ? .removing : .deploying
        } else if result.state == .succeeded {
            status = .running
        } else {
            // The old containers still serve after a rollback or a failed pull; a first deploy that failed has nothing.
            let services = JSONColumn.decode([StackService].self, stack.services) ?? []
            status = services.isEmpty || result.state == .failed && record.job.kind == .remove ? .failed : .running
        }
        switch (record.job.kind, result.state) {
        case (.remove, .succeeded) where nextKind == nil:
            try db.cachedStatement(sql: "DELETE FROM stack WHERE id = ?").execute(arguments: [stackId])
        case (.deploy, .succeeded):
            let services = JSONColumn.encode(result.services.map {
                StackService(name: $0.name, image: $0.image, imageId: $0.imageId, containers: $0.containers)
            })
            // What the job ran beyond what its compose file and env say stays pinned for later deploys.
            let written = (try? ComposeCache.shared.resolve(record.compose, environment: record.env))?.services ?? []
            var pins: [String: String] = [:]
            for planned in record.job.plan.services where written.first(where: { $0.name == planned.name })?.image != planned.image {
                pins[planned.name] = planned.image
            }
            let env = JSONColumn.encode(record.env), pinned = JSONColumn.encode(pins)
            // An edit (PUT) since the job was queued is the newer definition: the job's own would
            // undo it, and the edit's deploy, queued behind this one, deploys it (jobs queued after
            // the edit were planned on it). So then, as when nothing changed, only what runs is
            // written; not rewriting the definition keeps the stack's webhook target cached (`StackRowObserver`).
            if revision != stack.revision || record.compose == stack.compose && env == stack.env && pinned == stack.pins {
                try db.cachedStatement(sql: "UPDATE stack SET services = ?, status = ?, updated_at = ? WHERE id = ?")
                    .execute(arguments: [services, status.rawValue, date.column, stackId])
            } else {
                try db.cachedStatement(sql: """
                    UPDATE stack SET compose = ?, env = ?, services = ?, pins = ?, status = ?, updated_at = ? WHERE id = ?
                    """).execute(arguments: [record.compose, env, services, pinned, status.rawValue, date.column, stackId])
            }
        default:
            try db.cachedStatement(sql: "UPDATE stack SET status = ? WHERE id = ?").execute(arguments: [status.rawValue, stackId])
        }
        return nextKind != nil
    }

    /// A job's log as text, one line per line.
    public func jobLog(jobId: String) async throws -> String {
        try await db.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM job WHERE id = ?", arguments: [jobId]) == true else {
                throw StoreError.notFound("job")
            }
            let chunks = try String.fetchAll(db, sql: "SELECT lines FROM job_log WHERE job_id = ? ORDER BY chunk", arguments: [jobId])
            return chunks.isEmpty ? "" : chunks.joined(separator: "\n") + "\n"
        }
    }
}

extension SQLiteStore {
    /// Counted over the index `job_state_finished`, not the job rows (`StoreIndexTests`).
    static let jobCountsSQL = "SELECT state, COUNT(*) AS n FROM job GROUP BY state"

    /// How many jobs are in each state.
    public func jobCounts() async throws -> [JobState: Int] {
        try await db.read { db in
            var counts: [JobState: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: Self.jobCountsSQL)) {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }
}

/// Each stack's newest queued deploy, as the current write transaction left it.
struct QueuedDeploys {
    /// Each stack's newest queued deploy, as this transaction left it.
    var byStack: [String: JobRecord] = [:]
    /// Jobs that requests joined and that are not written yet, by id.
    var joined: [String: JobRecord] = [:]
    /// The registries' credentials, read once per transaction for the jobs it claims.
    var registries: [RegistryAuth]?
    /// Stacks whose remove this transaction queued: they take no new deploy.
    var removing: Set<String> = []
}

/// Job requests waiting for the store's next group commit.
struct EnqueueQueue: Sendable {
    struct Waiting: Sendable {
        var stackId: String
        var request: JobRequest
        var connected: ConnectedAgents?
        /// Called once with the request's outcome.
        var done: @Sendable (Result<Enqueued, any Error>) -> Void
    }

    var waiting: [Waiting] = []
    /// Whether a task is writing; new requests join its next transaction.
    var writing = false
}
