import Foundation
import Testing
import WharfProtocol
@testable import WharfServer

/// The per-job log cap, on a real SQLite file.
@Suite(.timeLimit(.minutes(2)))
struct StoreRetentionTests {
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
