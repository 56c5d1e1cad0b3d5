import Foundation
import Logging
import ServiceLifecycle

/// The server's periodic store work: deleting jobs past their retention.
public struct Housekeeping: Service {
    /// What runs, and how often.
    public struct Settings: Sendable {
        /// Final jobs finished longer ago than this are deleted; nil keeps them.
        public var jobRetention: TimeInterval?
        /// How often the prune runs, besides at start.
        public var pruneInterval: Duration = .seconds(3600)
        /// Jobs deleted per write transaction.
        public var pruneBatch = 32

        public init(jobRetention: TimeInterval?) {
            self.jobRetention = jobRetention
        }
    }

    private let store: SQLiteStore
    private let settings: Settings
    private let logger: Logger

    /// Makes the service; it does nothing until run.
    public init(store: SQLiteStore, settings: Settings, logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
    }

    /// Runs until the task is cancelled or the server stops.
    public func run() async throws {
        guard settings.jobRetention != nil else { return }
        await cancelWhenGracefulShutdown { await loop() }
    }

    private func loop() async {
        while !Task.isCancelled {
            await prune()
            try? await Task.sleep(for: settings.pruneInterval)
        }
    }

    /// Deletes expired jobs batch by batch, until a batch comes back short.
    func prune() async {
        guard let retention = settings.jobRetention else { return }
        var deleted = 0
        do {
            while !Task.isCancelled {
                let count = try await store.pruneJobs(finishedBefore: Date().addingTimeInterval(-retention), limit: settings.pruneBatch)
                deleted += count
                if count < settings.pruneBatch { break }
                // Webhook intake and agents' results share the writer: leave it to them a moment.
                try await Task.sleep(for: .milliseconds(20))
            }
        } catch is CancellationError {
        } catch {
            logger.warning("could not delete expired jobs", metadata: ["error": "\(error)"])
        }
        if deleted > 0 {
            logger.info("deleted jobs past their retention", metadata: ["jobs": "\(deleted)", "retention.days": "\(retention / 86_400)"])
        }
    }
}
