import Synchronization

/// A bounded memo of `ComposeFile.resolve` results, keyed by the compose text and the env.
///
/// Resolution is a pure function of its inputs, so a hit is always right; only successes are kept.
/// When full it starts over, which keeps it simple and its memory bounded.
public final class ComposeCache: Sendable {
    struct Key: Hashable {
        var compose: String
        var env: [String: String]
    }

    private let entries = Mutex<[Key: ResolvedCompose]>([:])
    private let capacity: Int

    /// The process-wide cache the API and the store share.
    public static let shared = ComposeCache()

    /// Makes a cache of at most `capacity` entries.
    public init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    private func get(_ compose: String, _ env: [String: String]) -> ResolvedCompose? {
        entries.withLock { $0[Key(compose: compose, env: env)] }
    }

    /// `ComposeFile.resolve`, memoised.
    func resolve(_ compose: String, environment env: [String: String]) throws(ComposeError) -> ResolvedCompose {
        if let cached = get(compose, env) { return cached }
        let resolved = try ComposeFile.resolve(compose, environment: env)
        put(compose, env, resolved)
        return resolved
    }

    private func put(_ compose: String, _ env: [String: String], _ resolved: ResolvedCompose) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[Key(compose: compose, env: env)] = resolved
        }
    }
}
