import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A simulated fleet of agents in one process: `wharf-agent --fleet N`.
///
/// It creates N environments over the API (`<prefix>-<i>`), enrols a fresh CURVE key for each,
/// then holds all N DEALER connections in one thread that waits with `zmq_poll`. Each agent speaks
/// the wire protocol as `AgentRuntime` does — hello on connect and on `hello_required`, a ping every
/// 2 s, an ack for every job — and answers every job at once with a `succeeded` result carrying the
/// planned images, so the server's whole path is exercised without Docker. Per-job timestamps go to
/// the fleet log (see `FleetLog`).
public struct Fleet: Sendable {
    public let configuration: FleetConfiguration
    public let logger: Logger

    /// Makes a fleet.
    public init(configuration: FleetConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Open files one process needs for `agents` connections: libzmq uses a TCP socket and a
    /// mailbox eventfd per DEALER, plus a few per context.
    public static func filesNeeded(agents: Int) -> Int { 2 * agents + 64 }

    /// Raises the open-file limit as far as allowed, and fails early when it is still too low.
    static func reserveFiles(for agents: Int) throws {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_, &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(RLIMIT_NOFILE_, &limit)
            _ = getrlimit(RLIMIT_NOFILE_, &limit)
        }
        let needed = filesNeeded(agents: agents)
        if limit.rlim_cur < rlim_t(needed) {
            throw FleetError("""
                \(agents) agents need about \(needed) open files, and this process may have \(limit.rlim_cur) \
                (hard limit \(limit.rlim_max)): run several fleets of fewer agents, with --fleet-first, or raise the limit
                """)
        }
    }

    /// Enrols what needs enrolling, connects every agent and serves them until the task is cancelled
    /// (or returns after enrolling, with `enrolOnly`).
    public func run() async throws {
        guard configuration.count >= 1 else { throw FleetError("a fleet has at least one agent") }
        try Self.reserveFiles(for: configuration.count)
        try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let log = try FleetLog(url: configuration.logFile)
        let hostname = ProcessInfo.processInfo.hostName
        let started = ContinuousClock.now
        let (roster, enrolled) = try await FleetEnroller(configuration: configuration, hostname: hostname).enrol()
        let enrolSeconds = Self.seconds(ContinuousClock.now - started)
        logger.info("fleet enrolled", metadata: [
            "agents": "\(roster.members.count)", "enrolled.now": "\(enrolled)", "seconds": "\(enrolSeconds)",
            "endpoint": "\(roster.endpoint)",
        ])
        log.event("enrolled", [("agents", Double(roster.members.count)), ("enrolledNow", Double(enrolled)), ("seconds", enrolSeconds)])
        if configuration.enrolOnly { return }
        try Task.checkCancellation()
        let link = try FleetLink(configuration: configuration, roster: roster, log: log, hostname: hostname, logger: logger)
        try await link.run()
        let stats = link.stats.value
        logger.info("fleet stopped", metadata: [
            "agents": "\(stats.agents)", "jobs": "\(stats.jobsReceived)", "acked": "\(stats.resultsAcknowledged)",
            "resent": "\(stats.resultsResent)", "errors": "\(stats.serverErrors)",
        ])
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}

#if canImport(Glibc)
private let RLIMIT_NOFILE_ = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif
