import Synchronization

/// The environments whose agents are connected now (edge agents excepted), kept by the dispatcher
/// and read by the store's writer.
///
/// A new job for one of them whose stack has no other unfinished job is claimed in the transaction
/// that queues it (`SQLiteStore.enqueueJob(stackId:request:claimingFor:)`) and handed to the
/// dispatcher to send (`Dispatcher.handOver`), instead of waiting for a dispatch round: one write
/// transaction and two thread hand-offs less per job. The set may be a moment behind the sessions;
/// that changes nothing about delivery: a claimed job that finds no session stays `dispatched` on
/// disk and goes out with the next round for that environment (its agent's next hello), as any job
/// claimed by a round whose agent went away meanwhile.
public final class ConnectedAgents: Sendable {
    private let environments = Mutex<Set<String>>([])

    public init() {}

    /// Whether a new job for the environment may be claimed at once.
    public func contains(_ environmentId: String) -> Bool {
        environments.withLock { $0.contains(environmentId) }
    }

    func insert(_ environmentId: String) {
        _ = environments.withLock { $0.insert(environmentId) }
    }

    func remove(_ environmentId: String) {
        _ = environments.withLock { $0.remove(environmentId) }
    }
}
