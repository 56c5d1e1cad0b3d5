import Testing
import WharfServer

/// `RateLimiter`: token buckets stepped by a hand-moved clock, never by sleeping.
struct RateLimiterTests {
    let t0 = ContinuousClock.now

    private func at(_ seconds: Double) -> ContinuousClock.Instant {
        self.t0.advanced(by: .milliseconds(Int64((seconds * 1000).rounded())))
    }

    @Test func burstThenLimitedWithRetryAfter() {
        let limiter = RateLimiter(.init(rate: 2, burst: 5))
        for _ in 0..<5 {
            #expect(limiter.acquire("k", now: self.t0) == .allowed)
        }
        #expect(limiter.acquire("k", now: self.t0) == .limited(retryAfter: 1))
        // Half a second at 2/s gives one token back.
        #expect(limiter.acquire("k", now: self.at(0.5)) == .allowed)
        #expect(limiter.acquire("k", now: self.at(0.5)) == .limited(retryAfter: 1))
    }

    @Test(arguments: [(1.0, 1), (0.5, 2), (0.1, 10), (0.3, 4), (100.0, 1)])
    func retryAfterIsWholeSecondsRoundedUp(rate: Double, retryAfter: Int) {
        let limiter = RateLimiter(.init(rate: rate, burst: 1))
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .limited(retryAfter: retryAfter))
        // And after that long it really is allowed again.
        #expect(limiter.acquire("k", now: self.at(Double(retryAfter))) == .allowed)
    }

    @Test func sustainedRateIsHonoured() {
        let limiter = RateLimiter(.init(rate: 20, burst: 40))
        var allowed = 0
        // 10 seconds of 100 calls per second.
        for step in 0..<1000 where limiter.acquire("token", now: self.at(Double(step) / 100)) == .allowed {
            allowed += 1
        }
        // The burst plus 20 per second for the ~10 s that passed.
        #expect((235...241).contains(allowed), "allowed \(allowed)")
    }

    @Test func keysAreIndependent() {
        let limiter = RateLimiter(.init(rate: 1, burst: 1))
        #expect(limiter.acquire("a", now: self.t0) == .allowed)
        #expect(limiter.acquire("a", now: self.t0) != .allowed)
        #expect(limiter.acquire("b", now: self.t0) == .allowed)
    }

    @Test func refillStopsAtBurst() {
        let limiter = RateLimiter(.init(rate: 10, burst: 3))
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        // An hour of quiet still only allows a burst of 3.
        let later = self.at(3600)
        for _ in 0..<3 {
            #expect(limiter.acquire("k", now: later) == .allowed)
        }
        #expect(limiter.acquire("k", now: later) == .limited(retryAfter: 1))
    }

    @Test func aRefundGivesBackOneTokenUpToTheBurst() {
        let limiter = RateLimiter(.init(rate: 1, burst: 2))
        limiter.refund("k")  // a key never seen: nothing to give back, and nothing tracked
        #expect(limiter.trackedKeys == 0)
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .limited(retryAfter: 1))
        limiter.refund("k")
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .limited(retryAfter: 1))
        // Refunds never make more than the burst.
        for _ in 0..<5 { limiter.refund("k") }
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .allowed)
        #expect(limiter.acquire("k", now: self.t0) == .limited(retryAfter: 1))
    }

    @Test func timeGoingBackwardsAddsNothing() {
        let limiter = RateLimiter(.init(rate: 1, burst: 1))
        #expect(limiter.acquire("k", now: self.at(10)) == .allowed)
        #expect(limiter.acquire("k", now: self.at(5)) == .limited(retryAfter: 1))
        #expect(limiter.acquire("k", now: self.at(11)) == .allowed)
    }

    @Test func idleBucketsAreSweptAway() {
        let limiter = RateLimiter(.init(rate: 1, burst: 2, sweepInterval: .seconds(60)))
        for index in 0..<100 {
            _ = limiter.acquire("client-\(index)", now: self.t0)
        }
        #expect(limiter.trackedKeys == 100)
        // A busy key keeps its bucket through the sweep: forgetting it would hand out a fresh burst.
        #expect(limiter.acquire("busy", now: self.at(59.5)) == .allowed)
        #expect(limiter.acquire("busy", now: self.at(59.5)) == .allowed)
        #expect(limiter.trackedKeys == 101)
        // The first call 60 s after the last sweep sweeps: the idle clients' buckets are full again.
        #expect(limiter.acquire("busy", now: self.at(60)) == .limited(retryAfter: 1))
        #expect(limiter.trackedKeys == 1)
    }

    @Test func memoryIsBoundedUnderAFloodOfKeys() {
        let limiter = RateLimiter(.init(rate: 1, burst: 5, maxKeys: 100))
        for index in 0..<10_000 {
            _ = limiter.acquire("flood-\(index)", now: self.at(Double(index) / 1000))
            #expect(limiter.trackedKeys <= 100)
        }
        // A key used a moment ago survives the eviction of the least recently used ones.
        let limiter2 = RateLimiter(.init(rate: 1, burst: 5, maxKeys: 10))
        for _ in 0..<5 {
            _ = limiter2.acquire("victim", now: self.t0)
        }
        for index in 0..<8 {
            _ = limiter2.acquire("old-\(index)", now: self.at(0.001))
        }
        _ = limiter2.acquire("recent", now: self.at(0.002))
        _ = limiter2.acquire("victim", now: self.at(0.003))  // now the most recently used
        _ = limiter2.acquire("new", now: self.at(0.004))  // 11th key: evicts the older half
        #expect(limiter2.trackedKeys <= 10)
        #expect(limiter2.acquire("victim", now: self.at(0.005)) == .limited(retryAfter: 1))
    }

    @Test(.timeLimit(.minutes(1)))
    func concurrentCallersNeverGetMoreThanTheBurst() async {
        let limiter = RateLimiter(.init(rate: 1, burst: 40))
        let now = self.t0
        let allowed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var count = 0
                    for _ in 0..<100 where limiter.acquire("shared", now: now) == .allowed {
                        count += 1
                    }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 40)
    }

    @Test func documentedDefaults() {
        #expect(RateLimiter.Configuration.perWebhookToken.rate == 20)
        #expect(RateLimiter.Configuration.perWebhookToken.burst == 40)
        #expect(RateLimiter.Configuration.perClientAddress.rate == 50)
        #expect(RateLimiter.Configuration.perClientAddress.burst == 100)
    }
}
