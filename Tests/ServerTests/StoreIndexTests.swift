import Foundation
import GRDB
import Testing
import WharfProtocol
@testable import WharfServer

/// A stack's open jobs are found through the partial index of unfinished jobs, not by walking the
/// stack's whole history (a stack triggered by every CI run has thousands of finished jobs).
@Suite(.timeLimit(.minutes(2)))
struct StoreIndexTests {
    /// SQLite's plan for `sql` on a store with some history (a stack with 21 jobs that succeeded),
    /// so that the planner has something to choose between.
    static func queryPlan(_ sql: String, arguments: StatementArguments) async throws -> [String] {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, first) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        try await WebhookTargetCacheTests.succeed(store, first, environmentId: environment.id)
        for index in 0..<20 {
            let job = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v\(index)"))
            try await WebhookTargetCacheTests.succeed(store, job, environmentId: environment.id)
        }
        return try await store.db.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
        }
    }

    @Test(arguments: [SQLiteStore.newestOpenDeploySQL, SQLiteStore.newestOpenJobKindSQL,
                      SQLiteStore.anyOpenJobSQL, SQLiteStore.dispatchHeadsSQL])
    func openJobsOfAStackUseThePartialIndex(_ sql: String) async throws {
        let plan = try await Self.queryPlan(sql, arguments: ["x"])
        #expect(plan.contains { $0.contains("job_open_stack") || $0.contains("job_open ") }, "\(plan)")
        #expect(!plan.contains { $0.contains("INDEX job_stack") || $0.hasPrefix("SCAN") }, "\(plan)")
    }

    /// The prune, the agent-lost check and the `/metrics` job counts read the index on
    /// (state, finished_at), not every job row with its compose file and env.
    @Test(arguments: [(SQLiteStore.prunableJobsSQL, [1, 10]), (SQLiteStore.jobsWithAgentSQL, [1]), (SQLiteStore.jobCountsSQL, [])])
    func retentionAndCountsUseTheStateIndex(_ sql: String, _ arguments: [Int]) async throws {
        let plan = try await Self.queryPlan(sql, arguments: StatementArguments(arguments))
        #expect(plan.contains { $0.contains("job_state_finished") }, "\(plan)")
        #expect(!plan.contains { $0 == "SCAN job" || $0 == "SCAN j" }, "\(plan)")
    }
}
