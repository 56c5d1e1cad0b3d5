import Foundation
import Synchronization
@testable import WharfServer

/// Holds a store's writer in a transaction until `release()`, so that requests made meanwhile wait
/// for it and go together in the store's next group commit.
struct HeldWriter: Sendable {
    private final class Flags: Sendable {
        let holding = Atomic<Bool>(false)
        let released = Atomic<Bool>(false)
    }

    private let flags = Flags()
    private let blocker: Task<Void, any Error>

    /// Returns once the writer is held.
    init(_ store: SQLiteStore) async throws {
        let flags = flags
        blocker = Task {
            try await store.db.write { _ in
                flags.holding.store(true, ordering: .releasing)
                while !flags.released.load(ordering: .acquiring) { usleep(1_000) }
            }
        }
        while !flags.holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Lets the writer go on, and waits for the holding transaction to end.
    func release() async throws {
        flags.released.store(true, ordering: .releasing)
        try await blocker.value
    }
}
