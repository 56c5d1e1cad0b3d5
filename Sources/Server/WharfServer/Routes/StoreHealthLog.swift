import Logging
import Synchronization

/// Logs what the health checks find about the store when it changes, not on every probe: a load
/// balancer asking every second would otherwise fill the log with one error. A problem that stays
/// is logged again every `repeatAfter`; the store usable again is logged once.
final class StoreHealthLog: Sendable {
    private struct Last {
        var problem: StoreHealthProblem?
        var loggedAt: ContinuousClock.Instant
    }

    private let last = Mutex(Last(problem: nil, loggedAt: .now))
    let repeatAfter: Duration

    init(repeatAfter: Duration = .seconds(300)) {
        self.repeatAfter = repeatAfter
    }

    /// Notes one health check's finding (`nil`: the store can be used), and logs it if it is news.
    func record(_ problem: StoreHealthProblem?, logger: Logger, now: ContinuousClock.Instant = .now) {
        enum Line { case problem(StoreHealthProblem, again: Bool), recovered }
        let line: Line? = last.withLock { last in
            if problem == last.problem {
                guard let problem, now - last.loggedAt >= repeatAfter else { return nil }
                last.loggedAt = now
                return .problem(problem, again: true)
            }
            let before = last.problem
            last = Last(problem: problem, loggedAt: now)
            if let problem { return .problem(problem, again: before != nil && before?.reason == problem.reason) }
            return .recovered
        }
        switch line {
        case .problem(let problem, let again):
            logger.error(again ? "health check: the store still cannot be used" : "health check: the store cannot be used",
                         metadata: ["reason": "\(problem.reason)", "error": "\(problem.cause)"])
        case .recovered:
            logger.notice("health check: the store can be used again")
        case nil:
            break
        }
    }
}
