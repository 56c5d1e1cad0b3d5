import Foundation
import Logging
import ServiceLifecycle
import WharfProtocol

/// The server's periodic store work: deleting jobs past their retention, and ending the jobs of
/// agents that stayed away too long (CONTRACT.md: no job stays dispatched or running forever).
public struct Housekeeping: Service {
    /// What runs, and how often.
    public struct Settings: Sendable {
        /// Final jobs finished longer ago than this are deleted; nil keeps them.
        public var jobRetention: TimeInterval?
        /// Dispatched and running jobs of an agent away longer than this fail (`agent_lost`); nil never.
        public var agentLostAfter: TimeInterval?
        /// How often the prune runs, besides at start.
        public var pruneInterval: Duration = .seconds(3600)
        /// Jobs deleted per write transaction.
        public var pruneBatch = 32

        public init(jobRetention: TimeInterval?, agentLostAfter: TimeInterval?) {
            self.jobRetention = jobRetention
            self.agentLostAfter = agentLostAfter
        }

        /// How often agents are checked: a tenth of `agentLostAfter`, between 1 s and a minute, so
        /// that a job fails within about 10 % (or a minute) of the limit.
        var lostCheckInterval: Duration {
            guard let agentLostAfter else { return .seconds(60) }
            return .milliseconds(Int64(min(60, max(1, agentLostAfter / 10)) * 1000))
        }
    }

    private let store: SQLiteStore
    private let dispatcher: Dispatcher
    private let settings: Settings
    private let logger: Logger

    /// Makes the service; it does nothing until run.
    public init(store: SQLiteStore, dispatcher: Dispatcher, settings: Settings, logger: Logger) {
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.logger = logger
    }

    /// Runs until the task is cancelled or the server stops.
    public func run() async throws {
        guard settings.jobRetention != nil || settings.agentLostAfter != nil else { return }
        await cancelWhenGracefulShutdown { await loop() }
    }

    private func loop() async {
        // An agent's time away is counted from this start at the earliest: while the server was
        // down, no agent could connect (and after a long outage each gets the full time to come back).
        let started = Date()
        let clock = ContinuousClock()
        var nextPrune = clock.now
        var nextCheck = clock.now
        while !Task.isCancelled {
            if settings.jobRetention != nil, clock.now >= nextPrune {
                nextPrune = clock.now + settings.pruneInterval
                await prune()
            }
            if let lostAfter = settings.agentLostAfter, clock.now >= nextCheck {
                nextCheck = clock.now + settings.lostCheckInterval
                if Date().timeIntervalSince(started) >= lostAfter { await failLostAgentsJobs(after: lostAfter) }
            }
            let next = switch (settings.jobRetention, settings.agentLostAfter) {
            case (nil, _): nextCheck
            case (_, nil): nextPrune
            default: min(nextPrune, nextCheck)
            }
            try? await Task.sleep(until: next, clock: clock)
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

    /// Ends the dispatched and running jobs of environments away longer than `lostAfter`.
    func failLostAgentsJobs(after lostAfter: TimeInterval) async {
        let connected = await dispatcher.connectedEnvironments()
        let now = Date()
        do {
            let ended = try await store.failJobsOfLostAgents(lastSeenBefore: now.addingTimeInterval(-lostAfter), connected: connected, at: now)
            for job in ended {
                logger.warning("job failed: its agent did not come back", metadata: [
                    "job.id": "\(job.id)", "stack.id": "\(job.stackId)", "env.id": "\(job.environmentId)"])
            }
        } catch {
            logger.warning("could not end the jobs of lost agents", metadata: ["error": "\(error)"])
        }
    }
}
