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
