import ArgumentParser
import Foundation
import Logging
import WharfProtocol
import WharfServer

/// `wharf-server`: reads flags (or `WHARF_*` variables), then runs the server until SIGTERM.
@main
struct WharfServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wharf-server",
        abstract: "Wharf's central server: HTTP API, webhook endpoint, agent link and store."
    )

    @Option(help: "Data directory (database, keys, admin token). Env: WHARF_DATA_DIR.")
    var dataDir: String = ProcessInfo.processInfo.environment["WHARF_DATA_DIR"] ?? "./wharf-data"

    @Option(help: "HTTP listen host. Env: WHARF_HTTP_HOST.")
    var httpHost: String = ProcessInfo.processInfo.environment["WHARF_HTTP_HOST"] ?? "0.0.0.0"

    @Option(help: "HTTP listen port; 0 picks a free one. Env: WHARF_HTTP_PORT.")
    var httpPort: Int = Int(ProcessInfo.processInfo.environment["WHARF_HTTP_PORT"] ?? "") ?? 9000

    @Option(help: "ZeroMQ endpoint agents connect to; tcp://127.0.0.1:* picks a free port. Env: WHARF_ZMQ_BIND.")
    var zmqBind: String = ProcessInfo.processInfo.environment["WHARF_ZMQ_BIND"] ?? "tcp://0.0.0.0:9001"

    @Option(help: "Base URL webhook URLs are published under. Env: WHARF_PUBLIC_URL.")
    var publicURL: String?

    @Option(help: "ZeroMQ endpoint given to enrolling agents. Env: WHARF_ZMQ_PUBLIC_ENDPOINT.")
    var zmqPublicEndpoint: String?

    @Option(help: "Webhook calls per second per token (bursts of twice that; 2.5x per client address), or off. Env: WHARF_WEBHOOK_RATE_LIMIT.")
    var webhookRateLimit: String = ProcessInfo.processInfo.environment["WHARF_WEBHOOK_RATE_LIMIT"] ?? "20"

    @Option(help: "How long finished jobs and their logs are kept (30d, 12h, ...), or off to keep them forever; a stack's last job is always kept. Env: WHARF_JOB_RETENTION.")
    var jobRetention: String = ProcessInfo.processInfo.environment["WHARF_JOB_RETENTION"] ?? "30d"

    @Option(help: "How long an agent may stay disconnected before its dispatched and running jobs fail with agent_lost (24h, 90m, ...), or off. Env: WHARF_AGENT_LOST_AFTER.")
    var agentLostAfter: String = ProcessInfo.processInfo.environment["WHARF_AGENT_LOST_AFTER"] ?? "24h"

    @Option(help: "Log level: trace, debug, info, notice, warning, error. Env: WHARF_LOG_LEVEL.")
    var logLevel: String = ProcessInfo.processInfo.environment["WHARF_LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0 to 65535") }
        guard zmqBind.hasPrefix("tcp://") else { throw ValidationError("--zmq-bind must be a tcp:// endpoint") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard webhookRateLimit == "off" || (Double(webhookRateLimit).map { $0 > 0 } ?? false) else {
            throw ValidationError("--webhook-rate-limit must be a positive number of calls per second, or off")
        }
        guard FlagDuration.secondsOrOff(jobRetention) != nil else {
            throw ValidationError("--job-retention must look like 30d, 12h or 90m, or be off")
        }
        guard FlagDuration.secondsOrOff(agentLostAfter) != nil else {
            throw ValidationError("--agent-lost-after must look like 24h, 90m or 30s, or be off")
        }
        if let publicURL = nonEmpty(publicURL ?? ProcessInfo.processInfo.environment["WHARF_PUBLIC_URL"]), URL(string: publicURL)?.host == nil {
            throw ValidationError("--public-url must be an absolute URL such as https://wharf.example.com")
        }
    }

    func run() async throws {
        WharfLogHandler.pinLocalTimeZone()
        LoggingSystem.bootstrap(WharfLogHandler.init)
        var logger = Logger(label: "wharf-server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var configuration = ServerConfiguration(
            dataDirectory: URL(fileURLWithPath: dataDir), httpHost: httpHost, httpPort: httpPort, zmqBind: zmqBind,
            publicURL: nonEmpty(publicURL ?? ProcessInfo.processInfo.environment["WHARF_PUBLIC_URL"]),
            zmqPublicEndpoint: nonEmpty(zmqPublicEndpoint ?? ProcessInfo.processInfo.environment["WHARF_ZMQ_PUBLIC_ENDPOINT"])
        )
        configuration.webhookRateLimit = webhookRateLimit == "off" ? nil : Double(webhookRateLimit)
        configuration.jobRetention = FlagDuration.secondsOrOff(jobRetention) ?? nil
        configuration.agentLostAfter = FlagDuration.secondsOrOff(agentLostAfter) ?? nil
        let app = WharfServerApp(configuration: configuration, logger: logger)
        try await app.run()
    }
}

/// Treats an empty setting (such as `WHARF_PUBLIC_URL=`) as unset.
func nonEmpty(_ value: String?) -> String? {
    guard let value, !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
    return value
}
