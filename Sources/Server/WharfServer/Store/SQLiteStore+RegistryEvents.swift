import Foundation
import GRDB
import WharfProtocol

/// A job request named registry events its stack received after the request was planned (two
/// overlapping deliveries at once): nothing of it is written. Plan it again without `ids`.
public struct RegistryEventsRaced: Error, Sendable {
    public var ids: Set<String>
}

extension SQLiteStore {
    /// How long a stack remembers a registry event id. A registry resends an event it got no 2xx
    /// answer for within seconds to hours (CNCF Distribution backs off and retries while it runs);
    /// a week covers that with room to spare, and a row is a few dozen bytes.
    static let registryEventRetention: TimeInterval = 7 * 86_400
    /// How often the writer prunes expired event ids, besides at every start.
    static let registryEventPruneInterval: TimeInterval = 3_600

    /// Records, in the caller's write transaction, the registry event ids a request for a stack
    /// answers. Throws `event_already_received` when the stack has seen every one of them, and
    /// `RegistryEventsRaced` when it has seen some: another delivery recorded them after this
    /// request's plan was made without them (`receivedRegistryEvents`), so that plan would deploy
    /// them again. Either way the request's writes roll back; otherwise the new ids commit (or roll
    /// back) with the job it queues or joins.
    func recordRegistryEvents(_ db: Database, stackId: String, ids: [String], now: Date) throws {
        var seen = Set<String>()
        for id in ids {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO registry_event (stack_id, id, seen_at) VALUES (?, ?, ?)")
                .execute(arguments: [stackId, id, now.column])
            if db.changesCount == 0 { seen.insert(id) }
        }
        if seen.count == Set(ids).count { throw StoreError.eventAlreadyReceived }
        if !seen.isEmpty { throw RegistryEventsRaced(ids: seen) }
    }

    /// Which of `ids` the stack has received (and not yet pruned).
    public func receivedRegistryEvents(stackId: String, ids: [String]) async throws -> Set<String> {
        try await db.read { db in
            var received = Set<String>()
            // In chunks: an envelope of up to 1 MiB can name more ids than a statement takes.
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                received.formUnion(try String.fetchAll(
                    db, sql: "SELECT id FROM registry_event WHERE stack_id = ? AND id IN (\(marks))",
                    arguments: StatementArguments([stackId] + chunk)))
            }
            return received
        }
    }

    /// Deletes event ids older than `registryEventRetention`, through the index on `seen_at`.
    func pruneRegistryEvents(_ db: Database, now: Date) throws {
        try db.execute(sql: "DELETE FROM registry_event WHERE seen_at < ?",
                       arguments: [now.addingTimeInterval(-Self.registryEventRetention).column])
        // Only once it commits: a transaction that rolls back leaves the next one to prune.
        db.afterNextTransaction(onCommit: { [self] _ in registryEventsPrunedAt.withLock { $0 = now } })
    }

    /// `pruneRegistryEvents` at most once per `registryEventPruneInterval`: the writer calls it in
    /// a transaction that records event ids, the only writes that add rows.
    func pruneRegistryEventsIfDue(_ db: Database, now: Date) throws {
        let due = registryEventsPrunedAt.withLock { now.timeIntervalSince($0) >= Self.registryEventPruneInterval }
        if due { try pruneRegistryEvents(db, now: now) }
    }
}
