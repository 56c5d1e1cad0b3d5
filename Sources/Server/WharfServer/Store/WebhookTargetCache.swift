import GRDB
import Synchronization

/// The stacks behind recently used webhook tokens, so that a call for a known token does not read
/// the store before its job is queued.
///
/// An entry goes as soon as a transaction that changes its stack row's token, name, environment,
/// compose file, env or pins has committed: `StackRowObserver` reports the row, and the store's
/// `write` returns only after that, so a rotated or disabled token answers 404 from the next call
/// on. A read that raced with such a commit may not fill the cache: `fill` takes the generation
/// read before the store was read and refuses when any invalidation happened since.
///
/// A cached `Stack` has no `services` and no `lastJobId`, and its `status` and `updatedAt` can be
/// older than the row's; the trigger uses none of them. Bounded (about 1.1 KiB an entry, 4.5 MiB full): a fill
/// into a full cache empties it first — a hot token is back after one miss, while a cyclic sweep
/// over more stacks than fit gets no hits (nor would it with LRU). Unknown tokens are never cached.
final class WebhookTargetCache: Sendable {
    struct Target: Sendable {
        var rowID: Int64
        var stack: Stack
        var pins: [String: String]
        /// The public URL `stack.webhook` was made with.
        var publicURL: String
    }

    private struct State {
        var generation: UInt64 = 0
        var byToken: [String: Target] = [:]
        var tokenByRow: [Int64: String] = [:]
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// The cached target of `token`, if any.
    func lookup(_ token: String) -> Target? {
        state.withLock { $0.byToken[token] }
    }

    /// The generation to hand to `fill`: read it before reading the store.
    var generation: Generation {
        state.withLock { Generation(value: $0.generation) }
    }

    /// Remembers what the store said of `token`, unless something was invalidated since `generation`.
    func fill(_ token: String, _ target: Target, readAt generation: Generation) {
        state.withLock { state in
            guard state.generation == generation.value else { return }
            if state.byToken.count >= capacity, state.tokenByRow[target.rowID] == nil {
                // Full: start again rather than refuse, so that a token that gets hot after the
                // cache filled up with others still gets in (it is back after one miss).
                state.byToken.removeAll(keepingCapacity: true)
                state.tokenByRow.removeAll(keepingCapacity: true)
            }
            if let previous = state.tokenByRow[target.rowID] { state.byToken[previous] = nil }
            state.byToken[token] = target
            state.tokenByRow[target.rowID] = token
        }
    }

    /// Forgets the stacks of these rows (called after their change committed).
    func invalidate(rows: Set<Int64>) {
        state.withLock { state in
            state.generation &+= 1
            for row in rows {
                if let token = state.tokenByRow.removeValue(forKey: row) { state.byToken[token] = nil }
            }
        }
    }

    var count: Int { state.withLock { $0.byToken.count } }

    struct Generation: Equatable {
        var value: UInt64
    }
}

/// Tells a `WebhookTargetCache` which stack rows a committed transaction changed in a way a webhook
/// trigger sees. Runs on the store's writer queue.
final class StackRowObserver: TransactionObserver, @unchecked Sendable {
    /// The columns a trigger reads; `status`, `last_job_id` and `updated_at`, which every queued job
    /// writes, are not among them.
    static let watchedColumns: Set<String> = ["webhook_token", "name", "environment_id", "compose", "env", "pins"]

    private let cache: WebhookTargetCache
    // Only touched on the writer queue, one transaction at a time.
    private var changed: Set<Int64> = []

    init(cache: WebhookTargetCache) {
        self.cache = cache
    }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        switch eventKind {
        case .insert(let table), .delete(let table): return table == "stack"
        case .update(let table, let columns): return table == "stack" && !columns.isDisjoint(with: Self.watchedColumns)
        }
    }

    func databaseDidChange(with event: DatabaseEvent) {
        changed.insert(event.rowID)
    }

    func databaseDidCommit(_ db: Database) {
        guard !changed.isEmpty else { return }
        cache.invalidate(rows: changed)
        changed.removeAll(keepingCapacity: true)
    }

    func databaseDidRollback(_ db: Database) {
        changed.removeAll(keepingCapacity: true)
    }
}
