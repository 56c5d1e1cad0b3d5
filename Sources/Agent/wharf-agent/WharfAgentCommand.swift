import ArgumentParser
import Foundation
import Logging
import WharfProtocol
import WharfAgent
import ZeroMQ

/// `wharf-agent`: enrols once with a join token, then runs stack jobs from the server on the local engine.
@main
struct WharfAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wharf-agent",
        abstract: "Wharf's agent: connects out to the server and runs stack jobs on the local Docker engine.",
        discussion: """
            Fleet mode, for benchmarks: `wharf-agent --fleet N --server URL --admin-token-file FILE [--data-dir DIR] \
            [--fleet-log FILE]` creates N environments named fleet-<i>, enrols a fresh CURVE key for each (kept in \
            DIR for the next start), holds the N connections in one thread, answers every job at once with a \
            succeeded result, and writes per-job timestamps to --fleet-log. See bench/README.md.
            """
    )

    @Option(help: "The server's HTTP URL, such as http://wharf.example.com:9000. Env: WHARF_SERVER.")
    var server: String?

    @Option(help: "A join token from `wharf env add`; needed only on the first start. Env: WHARF_JOIN.")
    var join: String?

    @Option(help: "Data directory (key pair, identity, job journal, stack files). Env: WHARF_DATA_DIR.")
    var dataDir: String = ProcessInfo.processInfo.environment["WHARF_DATA_DIR"] ?? "./wharf-agent-data"

    @Option(help: "Docker engine endpoint. Env: DOCKER_HOST.")
    var dockerHost: String = ProcessInfo.processInfo.environment["DOCKER_HOST"] ?? "unix:///var/run/docker.sock"

    @Option(help: "Compose command, such as \"docker compose\" or \"docker-compose\"; detected when omitted.")
    var composeCommand: String?

    @Flag(help: "Edge mode: connect only at each check-in, take pending jobs, report, disconnect.")
    var edge = false

    @Option(help: "Edge check-in interval, such as 30s, 5m.")
    var checkinInterval: String = "30s"

    @Option(help: "Most stacks deployed at once.")
    var maxConcurrentStacks: Int = 4

    @Option(help: "Run no containers: answer every job with success after this delay (fleet simulation, benchmarks), such as 0s or 200ms.")
    var simulate: String?

    @Option(help: "With --simulate: append one line per job run to this file.")
    var simulateJournal: String?

    @OptionGroup(title: "Fleet mode (benchmarks)")
    var fleetOptions: FleetOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = ProcessInfo.processInfo.environment["WHARF_LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard FlagDuration.parse(checkinInterval) != nil else { throw ValidationError("--checkin-interval must look like 30s, 500ms or 5m, and be under 1000000000 seconds") }
        if let simulate, FlagDuration.parse(simulate) == nil { throw ValidationError("--simulate must look like 0s or 200ms, and be under 1000000000 seconds") }
        guard maxConcurrentStacks >= 1 else { throw ValidationError("--max-concurrent-stacks must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        try fleetOptions.validate(server: server ?? ProcessInfo.processInfo.environment["WHARF_SERVER"], join: join, edge: edge, simulate: simulate)
    }

    func run() async throws {
        var logger = Logger(label: "wharf-agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let environment = ProcessInfo.processInfo.environment
        let server = self.server ?? environment["WHARF_SERVER"]
        let join = self.join ?? environment["WHARF_JOIN"]
        if let count = fleetOptions.fleet, let server {
            try await runFleet(fleetOptions, count: count, server: server, dataDirectory: dataDir, logger: logger)
            return
        }
        let directory = try AgentDataDirectory(url: URL(fileURLWithPath: dataDir))
        // Held until the process ends: a second agent on this directory refuses to start.
        let lock = try AgentDataDirectoryLock(directory)
        defer { withExtendedLifetime(lock) {} }
        if let problem = lock.problem {
            logger.warning("running without the check that no other agent uses this data directory", metadata: ["problem": "\(problem)"])
        }
        let hostname = ProcessInfo.processInfo.hostName
        var identity = directory.identity()
        // An enrolment whose agent.key is gone, being replaced by a new key.
        var keyLost: AgentIdentity?
        if let enrolled = identity, !directory.hasKey {
            // The server knows this agent by the enrolled key only: a new one would be refused at
            // every connection. A join token enrols the new key instead.
            guard let join, !join.isEmpty else {
                // Exit 78, as for a revoked key: restarting cannot help (the unit's RestartPreventExitStatus).
                logger.critical("\(directory.url.path)/agent.key is missing, and the server knows this agent only by that key. Restore the file, or enrol this agent again: start it once with --join and a new join token for its environment (wharf env join ENVIRONMENT)",
                                metadata: ["env.id": "\(enrolled.environmentId)", "exit": "78"])
                throw ExitCode(Self.revokedExitStatus)
            }
            logger.notice("agent.key is missing: enrolling a new key with the join token", metadata: ["env.id": "\(enrolled.environmentId)"])
            try directory.forgetIdentity()
            identity = nil
            keyLost = enrolled
        }
        if let join, !join.isEmpty, let enrolled = identity {
            // Restarting with the same command line (or a unit that keeps WHARF_JOIN) must not fail: the token is spent.
            logger.info("already enrolled; ignoring --join (remove the data dir to enrol again)", metadata: ["env.id": "\(enrolled.environmentId)"])
        } else if let join, !join.isEmpty {
            guard let server else { throw ValidationError("--join needs --server") }
            do {
                identity = try await directory.enrol(server: server, joinToken: join, hostname: hostname, version: WharfAgentVersion.current)
            } catch {
                guard let keyLost else { throw error }
                // Back as it was (an enrolment without its key). A server that could not be reached
                // is tried again at the next start; a refused token (a spent one left in the unit's
                // settings) exits 78 again rather than making a restart loop.
                try? directory.removeKey()
                try? directory.save(keyLost)
                guard (error as? AgentSetupError)?.refused == true else { throw error }
                logger.critical("could not enrol a new key with the join token (\(error)); agent.key is still missing. Start the agent once with --join and a new join token for its environment (wharf env join ENVIRONMENT)",
                                metadata: ["env.id": "\(keyLost.environmentId)", "exit": "78"])
                throw ExitCode(Self.revokedExitStatus)
            }
            logger.info("enrolled", metadata: ["env.id": "\(identity!.environmentId)", "endpoint": "\(identity!.endpoint)"])
            if keyLost?.environmentId != identity!.environmentId {
                // Jobs left from an earlier enrolment of this data directory (a revoked key) are not run.
                // (A new key for the same environment keeps the journal: its jobs, the results it
                // owes and its tombstones are still this environment's, and nothing it finished runs again.)
                let discarded = try JobJournal(dataDirectory: directory.url).discardAll()
                if discarded > 0 {
                    logger.notice("left out jobs held for this directory's earlier enrolment", metadata: ["jobs": "\(discarded)"])
                }
            }
        }
        guard let identity else {
            throw ValidationError("this agent has not enrolled yet: start it once with --server URL --join TOKEN")
        }
        let engine: any ContainerEngine
        if let simulate {
            engine = SimulatedEngine(delay: FlagDuration.parse(simulate)!, journal: simulateJournal.map { URL(fileURLWithPath: $0) })
        } else {
            engine = try makeComposeEngine(dataDirectory: directory.url, dockerHost: dockerHost,
                                           composeCommand: composeCommand, logger: logger)
        }
        var configuration = AgentRuntime.Configuration(
            endpoint: identity.endpoint, serverKey: try CurveKey(z85: identity.serverPublicKey),
            keyPair: try directory.keyPair(), hostname: hostname)
        configuration.edge = edge
        configuration.checkinInterval = FlagDuration.parse(checkinInterval)!
        configuration.maxConcurrentStacks = maxConcurrentStacks
        let runtime = AgentRuntime(configuration: configuration, engine: engine,
                                   journal: try JobJournal(dataDirectory: directory.url),
                                   context: try ZMQContext(), logger: logger)
        do {
            try await runUntilSignalled(runtime, logger: logger)
        } catch let error as AgentRevokedError {
            // Not a crash to restart from: the unit's RestartPreventExitStatus=78 keeps systemd from looping.
            logger.critical("this agent's key was revoked; it will not reconnect. Remove the data directory's identity.json and agent.key and start it once with --join and a new join token",
                            metadata: ["message": "\(error.message)", "exit": "78"])
            throw ExitCode(Self.revokedExitStatus)
        } catch let error as AgentSupersededError {
            logger.critical("another agent with this key connected to the server, so this one stopped and will not reconnect. Run one agent per data directory: a copy of the directory on another host shares its key. To move an agent, stop the old one first; to add a host, enrol a new agent with a new environment's join token",
                            metadata: ["message": "\(error.message)", "exit": "78"])
            throw ExitCode(Self.revokedExitStatus)
        }
    }

    /// The exit status after `agent_revoked` or `agent_superseded`: EX_CONFIG, which the systemd
    /// unit does not restart.
    static let revokedExitStatus: Int32 = 78
}
