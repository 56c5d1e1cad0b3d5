import Logging
import Testing
@testable import WharfServer

/// `GET /api/health` logs what it finds about the store when that changes, not on every probe.
struct StoreHealthLogTests {
    @Test func aProblemIsLoggedWhenItStartsChangesAndEndsAndAgainOnlyAfterAWhile() {
        let capture = EdgeLogCapture()
        let logger = capture.logger()
        let log = StoreHealthLog(repeatAfter: .seconds(300))
        let start = ContinuousClock.now
        let gone = StoreHealthProblem(reason: "the database file was removed or replaced while the server runs: restart the server", cause: "moved")
        let unreadable = StoreHealthProblem(reason: "the database cannot be read", cause: "disk I/O error")

        log.record(nil, logger: logger, now: start)
        #expect(capture.entries.isEmpty, "a healthy store is not news")
        log.record(gone, logger: logger, now: start + .seconds(1))
        for second in 2..<60 { log.record(gone, logger: logger, now: start + .seconds(second)) }
        #expect(capture.entries.map(\.message) == ["health check: the store cannot be used"])
        #expect(capture.entries.first?.level == .error)
        #expect(capture.entries.first?.metadata["error"] == "moved")

        log.record(gone, logger: logger, now: start + .seconds(301))
        #expect(capture.entries.map(\.message).last == "health check: the store still cannot be used")
        log.record(unreadable, logger: logger, now: start + .seconds(302))
        #expect(capture.entries.last?.metadata["reason"] == "the database cannot be read")
        log.record(nil, logger: logger, now: start + .seconds(303))
        log.record(nil, logger: logger, now: start + .seconds(304))
        #expect(capture.entries.map(\.message) == [
            "health check: the store cannot be used", "health check: the store still cannot be used",
            "health check: the store cannot be used", "health check: the store can be used again",
        ])
    }
}
