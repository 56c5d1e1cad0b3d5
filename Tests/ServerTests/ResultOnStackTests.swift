import Foundation
import GRDB
import Testing
import WharfProtocol
@testable import WharfServer

/// What an agent's result does to its stack, on a real SQLite file: the stack's status, its
/// definition and pins after a deploy, its removal, and whether another of its jobs may go now.
@Suite(.timeLimit(.minutes(2)))
struct ResultOnStackTests {
    static func finish(_ store: SQLiteStore, _ job: Job, _ state: FinalJobState, services: [ServiceResult] = [],
                       on environmentId: String) async throws -> (job: Job, next: Bool) {
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: job.id, state: state, services: services), environmentId: environmentId)]
        let outcome = try await store.applyAgentBatch(batch, at: Date())
        guard case .stored(let finished, true) = outcome.results.first else {
            throw TestFailure("not stored: \(outcome.results)")
        }
        return (finished, outcome.nextJobs.contains(environmentId))
    }

    static func row(_ store: SQLiteStore, _ stackId: String) async throws -> [String: String?]? {
        try await store.db.read { db in
            try Row.fetchOne(db, sql: "SELECT status, compose, env, pins FROM stack WHERE id = ?", arguments: [stackId]).map {
                ["status": $0["status"], "compose": $0["compose"], "env": $0["env"], "pins": $0["pins"]]
            }
        }
    }

    /// A JSON column's object of strings.
    static func object(_ column: String??) -> [String: String]? {
        guard let text = column ?? nil else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    /// A store with one stack whose first deploy (demo/web:v1, as its compose file says) succeeded.
    static func runningStack() async throws -> (SQLiteStore, Environment, Stack) {
        let store = try StoreBatchingTests.store()
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, first) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        _ = try await finish(store, first, .succeeded, services: web("demo/web:v1"), on: environment.id)
        return (store, environment, stack)
    }

    static func web(_ image: String) -> [ServiceResult] {
        [ServiceResult(name: "web", image: image, imageId: "sha256:\(image.count)", containers: 1)]
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test func aFailedFirstDeployLeavesTheStackFailedAndADeployThatSucceedsMakesItRunning() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, first) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        let failed = try await Self.finish(store, first, .failed, on: environment.id)
        #expect(failed.job.state == .failed && !failed.next)
        #expect(try await Self.row(store, stack.id)?["status"] == "failed", "nothing runs after a first deploy failed")

        let second = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v1"))
        _ = try await Self.finish(store, second, .succeeded, services: Self.web("demo/web:v1"), on: environment.id)
        let after = try await store.stack(id: stack.id, publicURL: "http://127.0.0.1")
        #expect(after.status == .running && after.services.map(\.imageId) == ["sha256:11"])
        #expect(Self.object(try await Self.row(store, stack.id)?["pins"]) == [:], "the compose file's own image: nothing pinned")
    }

    @Test func aDeployOfAnotherImagePinsItAndAJobBehindItMayGoNext() async throws {
        let (store, environment, stack) = try await Self.runningStack()
        defer { StoreBatchingTests.discard(store) }

        // v2 (not what the compose file says), and a job behind it.
        let v2 = try await store.enqueueJob(stackId: stack.id, request: JobRequest(
            kind: .deploy, variables: ["MODE": "blue"], plan: [PlannedService(name: "web", image: "demo/web:v2")],
            trigger: JobTrigger(source: "webhook"), coalesce: false))
        let behind = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v3", coalesce: false))
        let ended = try await Self.finish(store, v2, .succeeded, services: Self.web("demo/web:v2"), on: environment.id)
        #expect(ended.next, "the job behind it may go now")
        var row = try #require(try await Self.row(store, stack.id))
        #expect(row["status"] == "deploying")
        #expect(Self.object(row["pins"]) == ["web": "demo/web:v2"])
        #expect(Self.object(row["env"]) == ["MODE": "blue"])

        // Rolled back: the old containers still serve; the definition stays as the last success left it.
        let rolledBack = try await Self.finish(store, behind, .rolledBack, on: environment.id)
        #expect(!rolledBack.next)
        row = try #require(try await Self.row(store, stack.id))
        #expect(row["status"] == "running")
        #expect(Self.object(row["pins"]) == ["web": "demo/web:v2"])

        // A repeat of a stored result ends nothing and changes nothing.
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: behind.id, state: .succeeded, services: Self.web("demo/web:v3")),
                               environmentId: environment.id)]
        guard case .stored(let repeated, false) = try await store.applyAgentBatch(batch, at: Date()).results.first else {
            Issue.record("a repeat should be stored as not ending the job")
            return
        }
        #expect(repeated.state == .rolledBack)
        #expect(try await Self.row(store, stack.id)?["status"] == "running")
    }

    @Test func withItsAgentConnectedTheQueuedJobBehindIsClaimedWithTheResultAndCarriesItsJoins() async throws {
        let (store, environment, stack) = try await Self.runningStack()
        defer { StoreBatchingTests.discard(store) }
        let v2 = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v2", coalesce: false))
        let behind = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v3", coalesce: false))
        // Two calls join the job behind in memory (nothing written yet).
        for _ in 0..<2 { _ = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v3")) }
        #expect(try await JoinInMemoryTests.writtenCount(store, behind.id) == 0)

        let connected = ConnectedAgents()
        connected.insert(environment.id)
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: v2.id, state: .succeeded, services: Self.web("demo/web:v2")),
                               environmentId: environment.id)]
        let outcome = try await store.applyAgentBatch(batch, at: Date(), claimingFor: connected)
        #expect(outcome.claimed.map(\.environmentId) == [environment.id])
        #expect(outcome.claimed.map(\.spec.id) == [behind.id])
        #expect(outcome.claimed.first?.spec.images == ["web": "demo/web:v3"])
        #expect(!outcome.nextJobs.contains(environment.id), "claimed: no round needed")
        let stored = try await store.job(id: behind.id).job
        #expect(stored.state == .dispatched)
        #expect(try await JoinInMemoryTests.writtenCount(store, behind.id) == 2, "the joins are written as it is claimed")
        // A call now makes a new job: the claimed one is on its way.
        let after = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v3"))
        #expect(after.id != behind.id && after.state == .queued)
    }

    @Test func withItsAgentAwayTheJobBehindWaitsForARound() async throws {
        let (store, environment, stack) = try await Self.runningStack()
        defer { StoreBatchingTests.discard(store) }
        let v2 = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v2", coalesce: false))
        let behind = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v3", coalesce: false))
        let connected = ConnectedAgents()
        connected.insert("another-environment")
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: v2.id, state: .failed), environmentId: environment.id)]
        let outcome = try await store.applyAgentBatch(batch, at: Date(), claimingFor: connected)
        #expect(outcome.claimed.isEmpty)
        #expect(outcome.nextJobs == [environment.id])
        #expect(try await store.job(id: behind.id).job.state == .queued)
    }

    @Test func aRemoveThatSucceededDeletesTheStack() async throws {
        let (store, environment, stack) = try await Self.runningStack()
        defer { StoreBatchingTests.discard(store) }
        let remove = try await store.enqueueJob(stackId: stack.id, request: JobRequest(
            kind: .remove, plan: [PlannedService(name: "web", image: "demo/web:v1")], pull: false,
            trigger: JobTrigger(source: "api"), coalesce: false))
        #expect(try await Self.row(store, stack.id)?["status"] == "removing")
        let removed = try await Self.finish(store, remove, .succeeded, on: environment.id)
        #expect(removed.job.state == .succeeded && !removed.next)
        #expect(try await Self.row(store, stack.id) == nil)
    }
}
