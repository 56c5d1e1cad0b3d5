import Foundation
import GRDB
import WharfProtocol

extension SQLiteStore {
    /// The most bytes of log the server keeps per job: a little over the agent's own cap (1 MiB of
    /// output, `JobLog.defaultTotalLimit`, plus its own lines), so that a well-behaved agent never
    /// reaches it, while an agent that sends without end (a job run again and again, a bug, a
    /// compromised node) cannot fill the server's disk.
    static let jobLogLimit = 2 << 20
    /// The line stored once, in place of what goes over `jobLogLimit`.
    static let jobLogTruncatedLine = "... log truncated by the server: over 2 MiB for this job"

    /// A job of the environment with the bytes its log holds so far (0 before its first chunk).
    static let jobLogSizeSQL = """
        SELECT COALESCE((SELECT bytes FROM job_log_size WHERE job_id = job.id), 0) FROM job WHERE id = ? AND environment_id = ?
        """

    /// Stores an agent's log chunk, in the caller's write transaction, unless it is not a job of
    /// `environmentId`, or the job's log is full.
    ///
    /// Chunks are kept whatever the job's state: the agent sends a job's last lines just before
    /// its result, and they may be stored in a later batch than the result (a resend), so a final
    /// job's chunks are not refused. The cap is what bounds them instead: the chunk that reaches
    /// `jobLogLimit` is cut at the last whole line that fits and ends with `jobLogTruncatedLine`,
    /// and later chunks are dropped. A chunk sent again (same `seq`) is stored and counted once.
    func appendLog(_ db: Database, _ chunk: LogChunk, environmentId: String) throws {
        guard let stored = try Int.fetchOne(db.cachedStatement(sql: Self.jobLogSizeSQL), arguments: [chunk.jobId, environmentId]),
              stored < Self.jobLogLimit else { return }
        var text = chunk.lines.joined(separator: "\n")
        var total = stored + text.utf8.count
        // At the cap (exactly there too): the log says that later lines were left out.
        if total >= Self.jobLogLimit {
            var room = Self.jobLogLimit - stored
            var kept: [String] = []
            for line in chunk.lines {
                let size = line.utf8.count + (kept.isEmpty ? 0 : 1)
                if size > room { break }
                kept.append(line)
                room -= size
            }
            kept.append(Self.jobLogTruncatedLine)
            text = kept.joined(separator: "\n")
            total = Self.jobLogLimit  // Full: nothing more is stored for this job.
        }
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO job_log (job_id, chunk, lines) VALUES (?, ?, ?)")
            .execute(arguments: [chunk.jobId, chunk.seq, text])
        guard db.changesCount > 0 else { return }  // A chunk stored before.
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO job_log_size (job_id, bytes) VALUES (?, ?)")
            .execute(arguments: [chunk.jobId, total])
    }
}
