import Foundation
import GRDB
import Synchronization
import Testing
import WharfProtocol
@testable import WharfServer

/// Calls that change nothing of a queued deploy but its count join it without a write
/// (`JoinableDeploys`); the count reaches the row with the job's next change. On a real SQLite file.
@Suite(.timeLimit(.minutes(2)))
struct JoinInMemoryTests {
    static let plan = [PlannedService(name: "web", image: "demo/web:v1")]

    static func request(_ image: String = "demo/web:v1", tag: String? = nil, coalesce: Bool = true) -> JobRequest {
        JobRequest(kind: .deploy, plan: [PlannedService(name: "web", image: image)],
                   trigger: JobTrigger(source: "webhook", params: tag.map { ["tag": $0] } ?? [:]), coalesce: coalesce)
    }

    /// The `coalesced` column as written, without the counts held in memory.
    static func writtenCount(_ store: SQLiteStore, _ jobId: String) async throws -> Int? {
        try await store.db.read { try Int.fetchOne($0, sql: "SELECT coalesced FROM job WHERE id = ?", arguments: [jobId]) }
    }

    static func setUp() async throws -> (SQLiteStore, Environment, Stack, Job) {
        let store = try StoreBatchingTests.store()
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, job) = try await StoreBatchingTests.stack(store, "hot", on: environment.id)
        return (store, environment, stack, job)
    }

    @Test func repeatedCallsJoinWithoutAWriteAndTheCountIsWrittenWhenTheJobIsClaimed() async throws {
        let (store, environment, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        let jobs = try await withThrowingTaskGroup(of: Job.self) { group in
            for _ in 0..<50 { group.addTask { try await store.enqueueJob(stackId: stack.id, request: Self.request()) } }
            return try await group.reduce(into: [Job]()) { $0.append($1) }
        }
        #expect(Set(jobs.map(\.id)) == [first.id])
        #expect(jobs.map(\.coalesced).sorted() == Array(1...50), "each call saw its own count")
        #expect(try await Self.writtenCount(store, first.id) == 0, "no call wrote the row")
        // Reads show what the calls were told.
        #expect(try await store.job(id: first.id).job.coalesced == 50)
        #expect(try await store.jobs(stackId: stack.id, state: .queued, limit: 10).map(\.coalesced) == [50])

        let claims = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 8)])
        #expect(claims.first?.jobs.map(\.id) == [first.id])
        #expect(try await Self.writtenCount(store, first.id) == 50, "the claim wrote the count")
        #expect(store.joinable.count == 0)
        #expect(try await store.job(id: first.id).job.coalesced == 50)

        // A dispatched job is not joined: the next call queues a new one, and calls after it join that.
        let next = try await store.enqueueJob(stackId: stack.id, request: Self.request())
        #expect(next.id != first.id && next.coalesced == 0)
        let joined = try await store.enqueueJob(stackId: stack.id, request: Self.request())
        #expect(joined.id == next.id && joined.coalesced == 1)
        #expect(try await Self.writtenCount(store, next.id) == 0)
    }

    @Test func aCallThatChangesTheJobGoesThroughTheWriterWithTheCountsBeforeIt() async throws {
        let (store, environment, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        for _ in 0..<10 { _ = try await store.enqueueJob(stackId: stack.id, request: Self.request()) }
        #expect(try await Self.writtenCount(store, first.id) == 0)

        // A new image, then a new trigger parameter: each changes the job, so each is written.
        let changed = try await store.enqueueJob(stackId: stack.id, request: Self.request("demo/web:v2"))
        #expect(changed.id == first.id && changed.coalesced == 11)
        #expect(changed.plan.services == [PlannedService(name: "web", image: "demo/web:v2")])
        #expect(try await Self.writtenCount(store, first.id) == 11)
        let tagged = try await store.enqueueJob(stackId: stack.id, request: Self.request("demo/web:v2", tag: "v2"))
        #expect(tagged.coalesced == 12 && tagged.trigger.params == ["tag": "v2"])
        #expect(try await Self.writtenCount(store, first.id) == 12)

        // The same call again changes nothing: in memory again.
        for _ in 0..<5 { _ = try await store.enqueueJob(stackId: stack.id, request: Self.request("demo/web:v2", tag: "v2")) }
        #expect(try await Self.writtenCount(store, first.id) == 12)
        let stored = try await store.job(id: first.id)
        #expect(stored.job.coalesced == 17)
        #expect(stored.job.plan.services == [PlannedService(name: "web", image: "demo/web:v2")])

        // An agent's acknowledgement moves the job on and writes the count with it.
        var batch = AgentBatch()
        batch.acks = [.init(jobId: first.id, environmentId: environment.id)]
        _ = try await store.applyAgentBatch(batch, at: Date())
        #expect(try await Self.writtenCount(store, first.id) == 17)
        #expect(try await store.job(id: first.id).job.state == .dispatched)
    }

    @Test func aNewVariableIsWrittenAndAPullTheJobDoesAnywayIsNot() async throws {
        let (store, _, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        var request = Self.request()
        request.variables = ["TAG": "2"]
        let changed = try await store.enqueueJob(stackId: stack.id, request: request)
        #expect(changed.coalesced == 1)
        #expect(try await Self.writtenCount(store, first.id) == 1)
        #expect(try await store.job(id: first.id).env["TAG"] == "2")
        _ = try await store.enqueueJob(stackId: stack.id, request: request)
        #expect(try await Self.writtenCount(store, first.id) == 1, "the same variable again changes nothing")
        // The job pulls already: a call that says pullimage=false changes nothing either.
        var noPull = Self.request()
        noPull.pull = false
        let joined = try await store.enqueueJob(stackId: stack.id, request: noPull)
        #expect(joined.coalesced == 3)
        #expect(try await Self.writtenCount(store, first.id) == 1)
        #expect(try await store.job(id: first.id).pull == true)
    }

    @Test func aDeployThatMayNotJoinWritesTheCountOfTheOneBeforeAndBecomesTheOneToJoin() async throws {
        let (store, _, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        for _ in 0..<7 { _ = try await store.enqueueJob(stackId: stack.id, request: Self.request()) }
        let own = try await store.enqueueJob(stackId: stack.id, request: Self.request(coalesce: false))
        #expect(own.id != first.id)
        #expect(try await Self.writtenCount(store, first.id) == 7)
        let joined = try await store.enqueueJob(stackId: stack.id, request: Self.request())
        #expect(joined.id == own.id && joined.coalesced == 1)
        #expect(try await Self.writtenCount(store, own.id) == 0)
        #expect(try await store.job(id: first.id).job.coalesced == 7)
    }

    @Test func aResultForAQueuedJobWritesItsCount() async throws {
        let (store, environment, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        for _ in 0..<3 { _ = try await store.enqueueJob(stackId: stack.id, request: Self.request()) }
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: first.id, state: .succeeded, services: [
            ServiceResult(name: "web", image: "demo/web:v1", imageId: "sha256:1", containers: 1)]), environmentId: environment.id)]
        let outcome = try await store.applyAgentBatch(batch, at: Date())
        guard case .stored(let finished, true) = outcome.results.first else {
            Issue.record("not stored: \(outcome.results)")
            return
        }
        #expect(finished.coalesced == 3)
        #expect(try await Self.writtenCount(store, first.id) == 3)
    }

    @Test func countsNotYetWrittenAreAllThatAStopCanLose() async throws {
        let (store, _, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        for _ in 0..<4 { _ = try await store.enqueueJob(stackId: stack.id, request: Self.request()) }
        // Another process opening the file (as after a crash) finds the job queued, as it was made.
        let reopened = try SQLiteStore(path: store.db.path)
        let job = try await reopened.job(id: first.id).job
        #expect(job.state == .queued && job.plan.services == Self.plan && job.coalesced == 0)
    }

    @Test func whenFullOnlyEntriesNobodyJoinedMakeRoom() async throws {
        let (store, environment, _, _) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        var records: [JobRecord] = []
        for name in ["a", "b", "c"] {
            let (stack, job) = try await StoreBatchingTests.stack(store, name, on: environment.id)
            records.append(JobRecord(job: job, compose: "", env: [:], pull: true, stackName: stack.name))
        }
        let joinable = JoinableDeploys(capacity: 2)
        joinable.publish(records[0..<2])
        #expect(joinable.join(stackId: records[0].job.stackId, Self.request()) != nil)
        joinable.publish([records[2]])  // full: b, never joined, makes room
        #expect(joinable.count == 2)
        #expect(joinable.join(stackId: records[1].job.stackId, Self.request()) == nil)
        #expect(joinable.join(stackId: records[2].job.stackId, Self.request())?.coalesced == 1)
        #expect(joinable.join(stackId: records[0].job.stackId, Self.request())?.coalesced == 2, "a's count was kept")
        let other = JoinableDeploys(capacity: 1)
        other.publish([records[0]])
        _ = other.join(stackId: records[0].job.stackId, Self.request())
        other.publish([records[1]])  // full of joined entries: b is not published, a keeps its count
        #expect(other.count == 1 && other.join(stackId: records[1].job.stackId, Self.request()) == nil)
        #expect(other.take(jobId: records[0].job.id)?.extra == 1)
    }

    @Test func underConcurrentClaimsEveryJoinIsCountedExactlyOnce() async throws {
        let (store, environment, stack, _) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        let calls = 3_000
        let claimer = Task {
            var claimed = 0
            while !Task.isCancelled {
                claimed += try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 1)])
                    .first?.jobs.count ?? 0
                // Finish what was claimed so that the stack's next job can be claimed in turn.
                let open = try await store.jobs(stackId: stack.id, state: .dispatched, limit: 10)
                var batch = AgentBatch()
                batch.results = open.map { .init(result: JobResult(jobId: $0.id, state: .succeeded, services: []), environmentId: environment.id) }
                if !batch.results.isEmpty { _ = try await store.applyAgentBatch(batch, at: Date()) }
                try await Task.sleep(for: .milliseconds(1))
            }
            return claimed
        }
        let jobs = try await withThrowingTaskGroup(of: Job.self) { group in
            for call in 0..<calls {
                // Mostly repeats (in memory), now and then a change (through the writer).
                let image = call % 50 == 0 ? "demo/web:v\(call)" : "demo/web:v1"
                group.addTask { try await store.enqueueJob(stackId: stack.id, request: Self.request(image)) }
            }
            return try await group.reduce(into: [Job]()) { $0.append($1) }
        }
        claimer.cancel()
        _ = try? await claimer.value
        // Move every job on, so that every count is on disk.
        while try await !store.jobs(stackId: stack.id, state: .queued, limit: 1).isEmpty {
            _ = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 1)])
            var batch = AgentBatch()
            batch.results = try await store.jobs(stackId: stack.id, state: .dispatched, limit: 10)
                .map { .init(result: JobResult(jobId: $0.id, state: .succeeded, services: []), environmentId: environment.id) }
            _ = try await store.applyAgentBatch(batch, at: Date())
        }
        #expect(store.joinable.count == 0)
        let written = try await store.db.read {
            try Int.fetchOne($0, sql: "SELECT SUM(coalesced) FROM job WHERE stack_id = ?", arguments: [stack.id]) ?? 0
        }
        let joined = jobs.filter { $0.coalesced > 0 }.count
        #expect(written == joined, "every call that was told it joined is in exactly one job's count")
        // And each job's count is the highest any of its callers saw.
        let byJob = Dictionary(grouping: jobs, by: \.id).mapValues { $0.map(\.coalesced).max() ?? 0 }
        for (id, seen) in byJob {
            #expect(try await Self.writtenCount(store, id) == seen, "\(id)")
        }
    }

    @Test func repeatsOfCallsWhoseParametersWereMergedStillJoinInMemory() async throws {
        let (store, _, stack, _) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        func request(_ params: [String: String], pull: Bool = true) -> JobRequest {
            JobRequest(kind: .deploy, plan: [PlannedService(name: "web", image: "demo/web:v1")], pull: pull,
                       trigger: JobTrigger(source: "dockerhub", params: params))
        }
        _ = try await store.enqueueJob(stackId: stack.id, request: request(["image": "docker.io/demo/web:v1"]), claimingFor: nil)
        let job = try await store.enqueueJob(stackId: stack.id, request: request(["image": "docker.io/demo/db:2"]), claimingFor: nil).job
        #expect(job.trigger.params["image"] == "docker.io/demo/web:v1, docker.io/demo/db:2")
        // A repeat of either push, or a call without a pull, changes nothing of the job: it joins
        // without the writer, as a repeated call does.
        #expect(store.joinQueuedDeploy(stackId: stack.id, request: request(["image": "docker.io/demo/db:2"])) != nil)
        #expect(store.joinQueuedDeploy(stackId: stack.id, request: request(["image": "docker.io/demo/web:v1"])) != nil)
        #expect(store.joinQueuedDeploy(stackId: stack.id, request: request(["pullimage": "false"], pull: false)) != nil)
        // A new image is a change.
        #expect(store.joinQueuedDeploy(stackId: stack.id, request: request(["image": "docker.io/demo/web:v2"])) == nil)
        #expect(try await store.job(id: job.id).job.trigger.params["image"] == "docker.io/demo/web:v1, docker.io/demo/db:2")
    }

    @Test func callsThatWaitedBehindTheWriteOfADeployJoinItWithoutAnotherTransaction() async throws {
        let (store, environment, stack, first) = try await Self.setUp()
        defer { StoreBatchingTests.discard(store) }
        // The first deploy goes to its agent: the next call queues a new deploy behind it.
        _ = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 8)])
        // Hold the writer, so that the call that queues it and the calls after it wait.
        let writer = try await HeldWriter(store)
        let queueing = Task { try await store.enqueueJob(stackId: stack.id, request: Self.request()) }
        while store.enqueues.withLock({ !$0.writing || !$0.waiting.isEmpty }) { try await Task.sleep(for: .milliseconds(1)) }
        let piled = (0..<10).map { _ in Task { try await store.enqueueJob(stackId: stack.id, request: Self.request()) } }
        while store.enqueues.withLock({ $0.waiting.count < 10 }) { try await Task.sleep(for: .milliseconds(1)) }
        try await writer.release()

        let queued = try await queueing.value
        #expect(queued.id != first.id && queued.coalesced == 0)
        var joined: [Job] = []
        for task in piled { joined.append(try await task.value) }
        #expect(Set(joined.map(\.id)) == [queued.id])
        #expect(joined.map(\.coalesced).sorted() == Array(1...10))
        // They joined in memory once it was committed: no second transaction wrote their count.
        #expect(try await Self.writtenCount(store, queued.id) == 0)
        #expect(try await store.job(id: queued.id).job.coalesced == 10)
    }
}
