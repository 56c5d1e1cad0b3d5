import Foundation
import GRDB
import Testing
@testable import WharfServer

/// "A job is on disk before it is acknowledged to the caller" (CONTRACT.md): every commit of the
/// store waits for the write-ahead log to reach the disk, so an acknowledged job survives a power
/// cut or an operating-system crash, not only a crash of the server.
@Suite(.timeLimit(.minutes(1)))
struct StoreDurabilityTests {
    @Test func theWriterCommitsWithAFullSync() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        // synchronous 2 is FULL; GRDB leaves its pool's writer at NORMAL (1), which in WAL mode
        // does not sync a commit.
        let (synchronous, journalMode) = try await store.db.write { db in
            (try Int.fetchOne(db, sql: "PRAGMA synchronous"), try String.fetchOne(db, sql: "PRAGMA journal_mode"))
        }
        #expect(synchronous == 2)
        #expect(journalMode == "wal")
    }
}
