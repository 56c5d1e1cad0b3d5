import Foundation
import GRDB
import Logging
import Testing
import WharfProtocol
@testable import WharfServer

/// Job retention, the per-job log cap and lost agents, on a real SQLite file.
@Suite(.timeLimit(.minutes(2)))
struct StoreRetentionTests {
    static let day: TimeInterval = 86_400

    static func log(_ store: SQLiteStore, _ jobId: String, environmentId: String, seq: Int, lines: [String]) async throws {
        var batch = AgentBatch()
        batch.logs = [.init(chunk: LogChunk(jobId: jobId, seq: seq, lines: lines), environmentId: environmentId)]
        _ = try await store.applyAgentBatch(batch, at: Date())
    }

    static func end(_ store: SQLiteStore, _ job: Job, environmentId: String, _ state: FinalJobState, at date: Date) async throws {
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: job.id, state: state, services: state == .succeeded ? [
            ServiceResult(name: "web", image: job.plan.services[0].image, imageId: "sha256:1", containers: 1)] : []),
                               environmentId: environmentId)]
        _ = try await store.applyAgentBatch(batch, at: date)
    }

    static func count(_ store: SQLiteStore, _ sql: String, _ id: String) async throws -> Int {
        try await store.db.read { db in try Int.fetchOne(db, sql: sql, arguments: [id]) ?? 0 }
    }

    @Test func pruneDeletesOldFinalJobsAndTheirLogsAndKeepsOpenRecentAndLastJobs() async throws {
        let harness = try await LinkHarness()
        let store = harness.store
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let old = Date().addingTimeInterval(-40 * Self.day), recent = Date().addingTimeInterval(-1 * Self.day)

        // Stack "app": three old final jobs, a recent one, and an open one (its last job).
        let (app, first) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        var expired = [first]
        for index in 0..<2 {
            expired.append(try await store.enqueueJob(stackId: app.id, request: StoreBatchingTests.request("demo/web:v\(index)", coalesce: false)))
        }
        let kept = try await store.enqueueJob(stackId: app.id, request: StoreBatchingTests.request("demo/web:v8", coalesce: false))
        let open = try await store.enqueueJob(stackId: app.id, request: StoreBatchingTests.request("demo/web:v9", coalesce: false))
        for (index, job) in (expired + [kept, open]).enumerated() {
            try await Self.log(store, job.id, environmentId: environment.id, seq: 1, lines: ["pulling \(index)", "done \(index)"])
        }
        try await Self.end(store, expired[0], environmentId: environment.id, .succeeded, at: old)
        try await Self.end(store, expired[1], environmentId: environment.id, .failed, at: old)
        try await Self.end(store, expired[2], environmentId: environment.id, .rolledBack, at: old)
        try await Self.end(store, kept, environmentId: environment.id, .succeeded, at: recent)
        // Stack "last": its only job, final and old, is what its `lastJobId` names.
        let (last, lastJob) = try await StoreBatchingTests.stack(store, "last", on: environment.id)
        try await Self.log(store, lastJob.id, environmentId: environment.id, seq: 1, lines: ["up"])
        try await Self.end(store, lastJob, environmentId: environment.id, .succeeded, at: old)

        // Through the service's batching, 2 jobs a transaction.
        var settings = Housekeeping.Settings(jobRetention: 30 * Self.day, agentLostAfter: nil)
        settings.pruneBatch = 2
        await Housekeeping(store: store, dispatcher: harness.dispatcher, settings: settings, logger: Logger(label: "test")).prune()

        for job in expired {
            await #expect(throws: StoreError.self) { try await store.job(id: job.id) }
            #expect(try await Self.count(store, "SELECT COUNT(*) FROM job_log WHERE job_id = ?", job.id) == 0)
            #expect(try await Self.count(store, "SELECT COUNT(*) FROM job_log_size WHERE job_id = ?", job.id) == 0)
        }
        for job in [kept, open, lastJob] {
            #expect(try await store.job(id: job.id).job.id == job.id)
            #expect(try await store.jobLog(jobId: job.id).isEmpty == false, "its log is kept")
        }
        #expect(try await store.stack(id: last.id, publicURL: "http://x").lastJobId == lastJob.id)
        #expect(try await store.stack(id: app.id, publicURL: "http://x").lastJobId == open.id)
        #expect(try await store.jobs(stackId: nil, state: nil, limit: 100).map(\.id).sorted() == [kept.id, open.id, lastJob.id].sorted())

        // Once the open job ends (old, say), it stays: it is the stack's last job.
        try await Self.end(store, open, environmentId: environment.id, .succeeded, at: old)
        #expect(try await store.pruneJobs(finishedBefore: Date().addingTimeInterval(-30 * Self.day), limit: 10) == 0)
        await harness.stop()
    }

    @Test func jobLogIsCappedWithOneMarkerAndLinesAfterTheResultAreKept() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (_, job) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        let line = String(repeating: "x", count: 4095)  // 4 KiB with its newline
        let chunk = Array(repeating: line, count: 256)  // 1 MiB

        // The agent's last lines may be stored after its result (a later batch): they are kept.
        try await Self.log(store, job.id, environmentId: environment.id, seq: 1, lines: ["first"])
        try await Self.end(store, job, environmentId: environment.id, .failed, at: Date())
        try await Self.log(store, job.id, environmentId: environment.id, seq: 2, lines: ["last words"])
        #expect(try await store.jobLog(jobId: job.id) == "first\nlast words\n")

        // An agent that goes on sending: 5 MiB more, one chunk sent twice.
        for seq in 3..<8 {
            try await Self.log(store, job.id, environmentId: environment.id, seq: seq, lines: chunk)
            if seq == 3 { try await Self.log(store, job.id, environmentId: environment.id, seq: seq, lines: chunk) }
        }
        let text = try await store.jobLog(jobId: job.id)
        #expect(text.utf8.count <= SQLiteStore.jobLogLimit + 200, "\(text.utf8.count) bytes")
        #expect(text.utf8.count > SQLiteStore.jobLogLimit - 5000, "the log is filled up to the cap: \(text.utf8.count) bytes")
        #expect(text.hasSuffix(SQLiteStore.jobLogTruncatedLine + "\n"))
        #expect(text.components(separatedBy: SQLiteStore.jobLogTruncatedLine).count == 2, "one marker")
        #expect(text.hasPrefix("first\nlast words\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.dropLast(2).allSatisfy { $0 == "first" || $0 == "last words" || $0 == line }, "only whole lines")
    }

    @Test func aLogFilledExactlyToTheCapSaysThatLaterLinesAreLeftOut() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (_, job) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        // One line of exactly the cap's bytes.
        try await Self.log(store, job.id, environmentId: environment.id, seq: 1, lines: [String(repeating: "x", count: SQLiteStore.jobLogLimit)])
        try await Self.log(store, job.id, environmentId: environment.id, seq: 2, lines: ["never stored"])
        let text = try await store.jobLog(jobId: job.id)
        #expect(text.hasSuffix(SQLiteStore.jobLogTruncatedLine + "\n"), "\(text.suffix(100))")
        #expect(!text.contains("never stored"))
    }

    @Test func lostAgentsRunningJobsFailAndItsLateResultIsIgnored() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (away, _) = try await store.createEnvironment(name: "away", type: .agent)
        let (here, _) = try await store.createEnvironment(name: "here", type: .agent)
        let (stack, running) = try await StoreBatchingTests.stack(store, "app", on: away.id)
        let queued = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v2", coalesce: false))
        let (otherStack, connectedJob) = try await StoreBatchingTests.stack(store, "app", on: here.id)
        var batch = AgentBatch()
        batch.started = [.init(jobId: running.id, environmentId: away.id), .init(jobId: connectedJob.id, environmentId: here.id)]
        _ = try await store.applyAgentBatch(batch, at: Date())
        let lastSeen = Date().addingTimeInterval(-2 * Self.day)
        try await store.touchEnvironments(ids: [away.id, here.id], at: lastSeen)

        // Seen recently enough: nothing ends.
        #expect(try await store.failJobsOfLostAgents(lastSeenBefore: lastSeen.addingTimeInterval(-60), connected: [], at: Date()).isEmpty)
        let ended = try await store.failJobsOfLostAgents(lastSeenBefore: Date().addingTimeInterval(-Self.day), connected: [here.id], at: Date())
        #expect(ended.map(\.id) == [running.id])
        let failed = try await store.job(id: running.id).job
        #expect(failed.state == .failed && failed.error?.code == "agent_lost" && failed.finishedAt != nil)
        #expect(failed.error?.message.contains(lastSeen.formatted(.iso8601)) == true, "\(failed.error?.message ?? "")")
        #expect(try await store.job(id: queued.id).job.state == .queued, "a queued job waits for the agent")
        #expect(try await store.job(id: connectedJob.id).job.state == .running, "a connected agent's job is left alone")
        #expect(try await store.stack(id: otherStack.id, publicURL: "http://x").status == .deploying)

        // The agent comes back and reports the job: acknowledged as a repeat, nothing changes.
        var late = AgentBatch()
        late.results = [.init(result: JobResult(jobId: running.id, state: .succeeded, services: [
            ServiceResult(name: "web", image: "demo/web:v1", imageId: "sha256:1", containers: 1)]), environmentId: away.id)]
        let outcome = try await store.applyAgentBatch(late, at: Date())
        guard case .stored(_, let didEnd) = try #require(outcome.results.first) else {
            Issue.record("late result: \(outcome.results)")
            return
        }
        #expect(!didEnd)
        #expect(try await store.job(id: running.id).job == failed)
        #expect(try await store.stack(id: stack.id, publicURL: "http://x").services.isEmpty, "the late success is not applied")
    }
}
