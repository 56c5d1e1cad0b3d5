import Synchronization

/// A job's log: step lines and child-process output, with a cap on the total output.
///
/// Output lines count against the cap; once it is reached, one "... output truncated" line is
/// sent and further output is dropped. Step lines are always sent: they are few and short, and
/// they are what a user reads first.
final class JobLog: Sendable {
    /// The default cap on child-process output per job.
    static let defaultTotalLimit = 1 << 20

    private let sink: @Sendable (String) -> Void
    private let totalLimit: Int
    private let state = Mutex(State())

    private struct State {
        var bytes = 0
        var truncated = false
    }

    init(totalLimit: Int = JobLog.defaultTotalLimit, sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
        self.totalLimit = totalLimit
    }

    /// Logs a step of the job, one log line per line of `text`.
    func step(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            sink(String(line))
        }
    }

    /// Logs one line of a child's output, unless the job's output cap is reached.
    func output(_ line: String) {
        enum Decision { case send, sendTruncationNotice, drop }
        let decision: Decision = state.withLock { state in
            if state.truncated { return .drop }
            let size = line.utf8.count + 1
            if state.bytes + size > totalLimit {
                state.truncated = true
                return .sendTruncationNotice
            }
            state.bytes += size
            return .send
        }
        switch decision {
        case .send: sink(line)
        case .sendTruncationNotice: sink("... output truncated")
        case .drop: break
        }
    }
}
