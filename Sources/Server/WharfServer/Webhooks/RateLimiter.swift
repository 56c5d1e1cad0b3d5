import Synchronization

/// A token-bucket rate limiter keyed by a string (a webhook token, a client address).
///
/// Each key has a bucket of `burst` tokens that refills at `rate` tokens per second; a call
/// takes one token or is refused with the whole number of seconds (at least 1) after which
/// it would succeed, ready for a `Retry-After` header.
///
/// Memory is bounded: a bucket that has refilled completely is the same as no bucket, so such
/// buckets are dropped on a sweep every `sweepInterval`, and whenever a new key would make more
/// than `maxKeys`. If a sweep frees nothing (many busy keys), the least recently used half is
/// dropped: those keys start again with a full bucket, which lets a flood of distinct keys
/// through rather than lock out keys never seen before.
///
/// Time comes from the caller (`now:`), so tests step a clock instead of sleeping.
/// Thread-safe: the state is behind a `Mutex`, and no call blocks for longer than a sweep.
public final class RateLimiter: Sendable {
    /// Rate, burst and memory bound of a limiter.
    public struct Configuration: Sendable, Hashable {
        /// Tokens added per second, > 0.
        public var rate: Double
        /// Bucket capacity: the most calls allowed at once after a quiet spell, ≥ 1.
        public var burst: Int
        /// The most keys tracked at once before the least recently used are dropped.
        public var maxKeys: Int
        /// How often full (idle) buckets are swept away.
        public var sweepInterval: Duration

        /// Creates a configuration.
        public init(rate: Double, burst: Int, maxKeys: Int = 10_000, sweepInterval: Duration = .seconds(60)) {
            precondition(rate > 0 && rate.isFinite, "rate must be a positive number")
            precondition(burst >= 1, "burst must be at least 1")
            precondition(maxKeys >= 1, "maxKeys must be at least 1")
            self.rate = rate
            self.burst = burst
            self.maxKeys = maxKeys
            self.sweepInterval = sweepInterval
        }

        /// Per webhook token: 20 calls/s sustained, bursts of 40. A CI pipeline pushing a
        /// dozen images at once stays well under it; calls that arrive together coalesce
        /// into one job anyway.
        public static let perWebhookToken = Configuration(rate: 20, burst: 40)

        /// Per client address: 50 calls/s sustained, bursts of 100. Higher than per token
        /// because one registry or CI runner may serve many stacks.
        public static let perClientAddress = Configuration(rate: 50, burst: 100)
    }

    /// The answer to one call.
    public enum Decision: Sendable, Hashable {
        /// Go ahead; one token was taken.
        case allowed
        /// Refuse; a token will be available in `retryAfter` seconds (≥ 1).
        case limited(retryAfter: Int)
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var lastSweep: ContinuousClock.Instant?
    }

    /// The limiter's configuration.
    public let configuration: Configuration
    private let state = Mutex(State())

    /// Creates a limiter.
    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Takes a token from `key`'s bucket at time `now`, or says how long to wait.
    public func acquire(_ key: String, now: ContinuousClock.Instant = .now) -> Decision {
        let rate = self.configuration.rate
        let burst = Double(self.configuration.burst)
        return self.state.withLock { state in
            self.sweepIfDue(&state, now: now)
            var bucket: Bucket
            if let existing = state.buckets[key] {
                bucket = existing
                let elapsed = Self.seconds(now - bucket.updated)
                if elapsed > 0 {
                    bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
                    bucket.updated = now
                }
            } else {
                if state.buckets.count >= self.configuration.maxKeys {
                    self.makeRoom(&state, now: now)
                }
                bucket = Bucket(tokens: burst, updated: now)
            }
            let decision: Decision
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                decision = .allowed
            } else {
                let wait = ((1 - bucket.tokens) / rate).rounded(.up)
                decision = .limited(retryAfter: max(1, Int(min(wait, Double(Int32.max)))))
            }
            state.buckets[key] = bucket
            return decision
        }
    }

    /// Gives back the token an `.allowed` call took, when that call was then not made after all.
    public func refund(_ key: String) {
        let burst = Double(self.configuration.burst)
        self.state.withLock { state in
            guard var bucket = state.buckets[key] else { return }
            bucket.tokens = min(burst, bucket.tokens + 1)
            state.buckets[key] = bucket
        }
    }

    /// How many keys are tracked now (for tests and metrics).
    public var trackedKeys: Int {
        self.state.withLock { $0.buckets.count }
    }

    private func sweepIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard let last = state.lastSweep else {
            state.lastSweep = now
            return
        }
        if now - last >= self.configuration.sweepInterval {
            self.dropFullBuckets(&state, now: now)
        }
    }

    private func dropFullBuckets(_ state: inout State, now: ContinuousClock.Instant) {
        let rate = self.configuration.rate
        let burst = Double(self.configuration.burst)
        state.buckets = state.buckets.filter { _, bucket in
            bucket.tokens + Self.seconds(now - bucket.updated) * rate < burst
        }
        state.lastSweep = now
    }

    private func makeRoom(_ state: inout State, now: ContinuousClock.Instant) {
        self.dropFullBuckets(&state, now: now)
        let maxKeys = self.configuration.maxKeys
        guard state.buckets.count >= maxKeys else {
            return
        }
        // Every tracked key is busy: forget the least recently used half, so the cost of this
        // sort is spread over the maxKeys / 2 new keys that fit afterwards.
        let keep = maxKeys / 2
        let newest = state.buckets.sorted { $0.value.updated > $1.value.updated }.prefix(keep)
        state.buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
