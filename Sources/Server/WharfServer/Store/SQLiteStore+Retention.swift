import Foundation
import GRDB
import WharfProtocol

extension SQLiteStore {
    /// Final jobs finished before a time, less each stack's last job (`stack.last_job_id`, which the
    /// API shows as `lastJobId`), through the index `job_state_finished` (`StoreIndexTests`).
    static let prunableJobsSQL = """
        SELECT id FROM job WHERE state IN \(finalStates) AND finished_at < ?
        AND id NOT IN (SELECT last_job_id FROM stack WHERE last_job_id IS NOT NULL) LIMIT ?
        """

    /// Deletes up to `limit` final jobs (succeeded, failed, rolled back) that finished before
    /// `cutoff`, with their logs, in one write transaction; returns how many it deleted.
    ///
    /// An open job is never deleted, nor any stack's last job. Nothing else keeps a final job's id:
    /// registry event ids belong to stacks, and the jobs joined in memory (`JoinableDeploys`) and
    /// those the dispatcher tracks are open ones. A result an agent sends again for a deleted job is
    /// answered as one for an unknown job (acknowledged, not stored). Small batches keep each
    /// transaction short: webhook calls queue their jobs through the same writer in between.
    public func pruneJobs(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await db.write { db in
            let ids = try String.fetchAll(db.cachedStatement(sql: Self.prunableJobsSQL), arguments: [cutoff.column, limit])
            guard !ids.isEmpty else { return 0 }
            let list = JSONColumn.genericEncode(ids)
            try db.execute(sql: "DELETE FROM job_log WHERE job_id IN (SELECT value FROM json_each(?))", arguments: [list])
            try db.execute(sql: "DELETE FROM job_log_size WHERE job_id IN (SELECT value FROM json_each(?))", arguments: [list])
            try db.execute(sql: "DELETE FROM job WHERE id IN (SELECT value FROM json_each(?))", arguments: [list])
            return ids.count
        }
    }
}

extension SQLiteStore {
    /// Dispatched and running jobs with their environment's last-seen time, through the index
    /// `job_state_finished`.
    static let jobsWithAgentSQL = """
        SELECT j.id, j.environment_id, e.last_seen_at FROM job j JOIN environment e ON e.id = j.environment_id
        WHERE j.state IN ('dispatched','running') AND (e.last_seen_at IS NULL OR e.last_seen_at < ?)
        """

    /// Ends `failed` (`agent_lost`) the dispatched and running jobs of environments whose agent was
    /// last seen before `cutoff` and is not among `connected`; returns the jobs it ended.
    ///
    /// Each ends as an agent's failed result would (`finish`): the stack's status follows, and a
    /// stack whose remove was lost takes deploys again. Queued jobs stay queued for the agent's
    /// return. If the agent comes back and reports such a job, its result is a repeat for a final
    /// job: acknowledged and not stored. An agent's hello writes its last-seen time in the
    /// dispatcher's batch transaction, so a reconnect committed before this one keeps its jobs.
    public func failJobsOfLostAgents(lastSeenBefore cutoff: Date, connected: Set<String>, at now: Date) async throws -> [Job] {
        try await db.write { db in
            let lost = try Row.fetchAll(db.cachedStatement(sql: Self.jobsWithAgentSQL), arguments: [cutoff.column]).compactMap {
                row -> (jobId: String, environmentId: String, lastSeen: Date?)? in
                let environmentId: String = row["environment_id"]
                return connected.contains(environmentId) ? nil : (row["id"], environmentId, Date(column: row["last_seen_at"]))
            }
            var ended: [Job] = []
            for job in lost {
                let seen = job.lastSeen.map { "was last seen at \($0.formatted(.iso8601))" } ?? "was never seen"
                let error = JobError(code: "agent_lost", message: """
                    The environment's agent \(seen) and did not come back in time; this job's outcome on the node is unknown.
                    """)
                let result = JobResult(jobId: job.jobId, state: .failed, error: error)
                if let (record, didEnd, _) = try self.finish(db, result: result, environmentId: job.environmentId, at: now), didEnd {
                    ended.append(record)
                }
            }
            return ended
        }
    }
}
