import GRDB
import Synchronization

/// Queued deploys that a call may join without a trip to the writer, when joining changes nothing
/// but the job's `coalesced` count.
///
/// Most calls for a busy stack repeat the one before (a CI job retried, a registry announcing a
/// push more than once): they join its queued job, and the job's plan, env, trigger parameters and
/// pull flag stay as they are. Such a call adds one to its entry's `extra` here and is answered at
/// once; the job itself — everything it will deploy — is on disk already. A call that changes
/// anything else goes through the group commit as before (`SQLiteStore.enqueueJob`).
///
/// The invariant: an entry exists only for a job that is queued in the last committed state, and
/// its fields are that row's, less the `extra` not yet written. Therefore:
/// - entries are published after the commit that left the job so (`publish`, from GRDB's
///   `afterNextTransaction` on the writer's queue, before any other write can start);
/// - every write that changes a queued job row first takes its entry and writes its `extra` in the
///   same transaction (`SQLiteStore.foldJoins`): the group commit's join or new deploy for the
///   stack, an agent's acknowledgement, start or result, the dispatcher's claim. Joins that come
///   after the take find no entry and go to the writer, which runs after that transaction.
///
/// A crash, or a write that fails after taking an entry, can thus lose counts not yet written —
/// never a job, nor a change to what it deploys.
/// Bounded: when full, entries nobody joined are dropped; if all were joined, new ones are not
/// published (those stacks' calls go through the writer, as they did before this existed).
final class JoinableDeploys: Sendable {
    struct Entry: Sendable {
        /// The job as its row says, `coalesced` included.
        var job: Job
        var env: [String: String]
        var pull: Bool
        /// Calls joined here and not written yet.
        var extra: Int
    }

    private struct State {
        var byStack: [String: Entry] = [:]
        var stackByJob: [String: String] = [:]
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// Joins `request` into the stack's queued deploy if that changes nothing but its count;
    /// returns the job as the call's answer shows it, or nil when the call must go to the writer.
    /// A request with registry event ids never joins here: they must be written with its join.
    func join(stackId: String, _ request: JobRequest) -> Job? {
        guard request.kind == .deploy, request.coalesce, request.eventIds.isEmpty else { return nil }
        return state.withLock { state -> Job? in
            guard var entry = state.byStack[stackId], request.changesNothing(of: entry.job, env: entry.env, pull: entry.pull) else {
                return nil
            }
            entry.extra += 1
            state.byStack[stackId] = entry
            var job = entry.job
            job.coalesced += entry.extra
            return job
        }
    }

    /// Takes the entry of a job (by job id) or of a stack's queued deploy (by stack id), if any.
    func take(jobId: String) -> Entry? {
        state.withLock { state in
            guard let stackId = state.stackByJob.removeValue(forKey: jobId), state.byStack[stackId]?.job.id == jobId else {
                return nil
            }
            return state.byStack.removeValue(forKey: stackId)
        }
    }

    func take(stackId: String) -> Entry? {
        state.withLock { state in
            guard let entry = state.byStack.removeValue(forKey: stackId) else { return nil }
            state.stackByJob[entry.job.id] = nil
            return entry
        }
    }

    /// Takes every entry (on a graceful stop).
    func takeAll() -> [Entry] {
        state.withLock { state in
            defer { state = State() }
            return Array(state.byStack.values)
        }
    }

    /// Makes queued deploys joinable; call only once their rows are committed, before the next write.
    func publish(_ records: some Sequence<JobRecord>) {
        state.withLock { state in
            for record in records where record.job.state == .queued && record.job.kind == .deploy {
                let stackId = record.job.stackId
                var extra = 0
                if let previous = state.byStack[stackId] {
                    // Not expected (writes take a stack's entry before changing its jobs); keep its count.
                    if previous.job.id == record.job.id { extra = previous.extra }
                    state.stackByJob[previous.job.id] = nil
                } else if state.byStack.count >= capacity {
                    state.byStack = state.byStack.filter { $0.value.extra > 0 }
                    state.stackByJob = state.stackByJob.filter { state.byStack[$0.value]?.job.id == $0.key }
                    if state.byStack.count >= capacity { continue }
                }
                state.byStack[stackId] = Entry(job: record.job, env: record.env, pull: record.pull, extra: extra)
                state.stackByJob[record.job.id] = stackId
            }
        }
    }

    /// Adds the counts not yet written to a job read from the store.
    func overlay(_ job: inout Job) {
        guard job.state == .queued else { return }
        let extra = state.withLock { state -> Int in
            guard let stackId = state.stackByJob[job.id], let entry = state.byStack[stackId] else { return 0 }
            return entry.extra
        }
        job.coalesced += extra
    }

    /// How many entries there are (for tests).
    var count: Int { state.withLock { $0.byStack.count } }
}

extension JobRequest {
    /// Whether joining would leave a queued deploy as it is: no compose file of its own, every
    /// image this request targets is the one the job has, every variable has the value the job's
    /// env gives it (so they change no image either: `apply(to:env:compose:)`), and so does every
    /// trigger parameter; no service the job lacks; no pull the job does not do. Checked without
    /// building the merged job.
    func changesNothing(of job: Job, env: [String: String], pull jobPulls: Bool) -> Bool {
        guard compose == nil, pull == false || jobPulls else { return false }
        for service in plan {
            let current = job.plan.services.first { $0.name == service.name }
            guard let current else { return false }  // a new service
            if targeted.contains(service.name), current.image != service.image { return false }
        }
        for (name, value) in variables where env[name] != value { return false }
        for (name, value) in trigger.params where job.trigger.params[name] != value {
            // As the writer would merge them (`SQLiteStore.enqueue`): a call without a pull joining a
            // job that pulls leaves it pulling, with no `pullimage`; an image the job's list names
            // already leaves the list as it is.
            if name == "pullimage", value == "false", jobPulls { continue }
            if name == "image", let images = job.trigger.params["image"], JobTrigger.mergedImages(images, value) == images { continue }
            return false
        }
        return true
    }

    /// Applies this request to the deploy ahead of it — the queued deploy it joins, or the newest
    /// open deploy of its stack, which a new job follows — as if that deploy had succeeded first.
    ///
    /// The variables merge into the deploy's env, the newest value winning, and a service takes
    /// the image they give it under the deploy's compose file only where they change it (compared
    /// with the deploy's env, not the stack's: a value set by the deploy ahead is the value now);
    /// every other service keeps the deploy's image, pinned or pushed ones included. A service
    /// this request targets (a tag, a push) then takes the requested image, and a service the
    /// deploy does not have takes this request's. Resolves the compose file only when the
    /// variables change the env (`ComposeCache`, memoised).
    func apply(to plan: inout JobPlan, env: inout [String: String], compose: String) throws(ComposeError) {
        var images = Dictionary(plan.services.map { ($0.name, $0.image) }, uniquingKeysWith: { $1 })
        let merged = env.merging(variables) { _, new in new }
        if merged != env {
            // Joined calls each within the limit may still add up to more than it.
            try StackLimits.check(env: merged)
            let before = try ComposeCache.shared.resolve(compose, environment: env).services
            for service in try ComposeCache.shared.resolve(compose, environment: merged).services
            where before.first(where: { $0.name == service.name })?.image != service.image {
                images[service.name] = service.image
            }
        }
        for service in self.plan where targeted.contains(service.name) || images[service.name] == nil {
            images[service.name] = service.image
        }
        plan.services = images.keys.sorted().map { PlannedService(name: $0, image: images[$0]!) }
        env = merged
    }
}

extension SQLiteStore {
    /// Writes every count held in memory; what joins after this goes through the writer again.
    /// The server calls it when it stops gracefully.
    public func writeJoinCounts() async throws {
        try await db.write { db in
            for entry in self.joinable.takeAll() { try self.foldJoins(db, entry) }
        }
    }

    /// Takes the joinable entry of a job, or of a stack's queued deploy, and writes the calls that
    /// joined it and are not written yet; call inside the write transaction that changes the job.
    func foldJoins(_ db: Database, _ entry: JoinableDeploys.Entry?) throws {
        guard let entry, entry.extra > 0 else { return }
        try db.cachedStatement(sql: "UPDATE job SET coalesced = coalesced + ? WHERE id = ?")
            .execute(arguments: [entry.extra, entry.job.id])
    }
}
