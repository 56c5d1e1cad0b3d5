import ArgumentParser
import Dispatch
import Foundation
import Logging
import WharfAgent

#if canImport(Glibc)
import Glibc
#endif

/// The options of fleet mode (`--fleet N`): a simulated fleet of agents for benchmarks.
struct FleetOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Fleet mode: simulate N agents in this one process (benchmarks). Creates environments <prefix>-<i> over the API, enrols a fresh CURVE key for each, holds all N connections in one thread, and answers every job at once with success.",
        valueName: "N"))
    var fleet: Int?

    @Option(help: ArgumentHelp("With --fleet: a file holding the server's admin API token (such as wharf-data/admin-token).", valueName: "file"))
    var adminTokenFile: String?

    @Option(help: ArgumentHelp("With --fleet: write one JSON line per finished job (received, resultSent, resultAcked, in seconds since 1970) and per fleet event to this file (truncated first).", valueName: "file"))
    var fleetLog: String?

    @Option(help: "With --fleet: index of the first agent, so that several fleet processes can share one naming scheme.")
    var fleetFirst: Int = 0

    @Option(help: "With --fleet: environment name prefix.")
    var fleetPrefix: String = "fleet"

    @Flag(help: "With --fleet: create the environments and enrol the keys, then exit without connecting.")
    var fleetEnrolOnly = false

    @Option(help: "With --fleet: how the fleet's thread waits: epoll (on each socket's ZMQ_FD), fds (zmq_poll over each socket's ZMQ_FD) or sockets (zmq_poll over the sockets).")
    var fleetPoll: String = FleetConfiguration.PollMode.epoll.rawValue

    func validate(server: String?, join: String?, edge: Bool, simulate: String?) throws {
        guard let fleet else {
            if adminTokenFile != nil || fleetLog != nil { throw ValidationError("--admin-token-file and --fleet-log go with --fleet") }
            return
        }
        guard fleet >= 1 else { throw ValidationError("--fleet needs at least 1 agent") }
        guard server != nil else { throw ValidationError("--fleet needs --server URL") }
        guard adminTokenFile != nil else { throw ValidationError("--fleet needs --admin-token-file FILE") }
        guard join == nil, !edge, simulate == nil else { throw ValidationError("--fleet cannot be combined with --join, --edge or --simulate") }
        guard fleetFirst >= 0 else { throw ValidationError("--fleet-first must be 0 or more") }
        guard !fleetPrefix.isEmpty, fleetPrefix.count <= 48 else { throw ValidationError("--fleet-prefix must be 1 to 48 characters") }
        guard FleetConfiguration.PollMode(rawValue: fleetPoll) != nil else { throw ValidationError("--fleet-poll must be epoll, fds or sockets") }
    }
}

/// Runs a fleet until SIGTERM or SIGINT, then closes every connection and exits.
func runFleet(_ options: FleetOptions, count: Int, server: String, dataDirectory: String, logger: Logger) async throws {
    let tokenPath = options.adminTokenFile!
    guard let token = try? String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
          !token.isEmpty else {
        throw ValidationError("cannot read an admin token from \(tokenPath)")
    }
    var configuration = FleetConfiguration(server: server, adminToken: token, count: count,
                                           dataDirectory: URL(fileURLWithPath: dataDirectory))
    configuration.first = options.fleetFirst
    configuration.prefix = options.fleetPrefix
    configuration.logFile = options.fleetLog.map { URL(fileURLWithPath: $0) }
    configuration.pollMode = FleetConfiguration.PollMode(rawValue: options.fleetPoll) ?? .epoll
    configuration.enrolOnly = options.fleetEnrolOnly
    let fleet = Fleet(configuration: configuration, logger: logger)
    try await runUntilSignalled(logger: logger) { try await fleet.run() }
}
