import Foundation
import GRDB
import Logging
import Testing
import WharfProtocol
@testable import WharfServer

/// Job retention and the per-job log cap, on a real SQLite file.
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
        var settings = Housekeeping.Settings(jobRetention: 30 * Self.day)
        settings.pruneBatch = 2
        await Housekeeping(store: store, settings: settings, logger: Logger(label: "test")).prune()

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
}
