import Foundation

/// Everything `wharf-server` is started with (flags or `WHARF_*` variables).
public struct ServerConfiguration: Sendable {
    public var dataDirectory: URL
    public var httpHost: String
    /// 0 picks a free port.
    public var httpPort: Int
    /// `tcp://127.0.0.1:*` picks a free port.
    public var zmqBind: String
    /// The URL webhooks are published under; defaults to the HTTP listener's.
    public var publicURL: String?
    /// The endpoint agents are told to connect to; defaults to the bound one, with the public URL's host for a wildcard bind.
    public var zmqPublicEndpoint: String?
    /// Webhook calls per second allowed per token (bursts of twice that); each client address gets
    /// 2.5 times as much. Nil turns the limits off (benchmarks, trusted networks).
    public var webhookRateLimit: Double? = 20
    /// How long final jobs (succeeded, failed, rolled back) and their logs are kept after they end;
    /// nil keeps them forever. A stack's last job is always kept (`SQLiteStore.pruneJobs`).
    public var jobRetention: TimeInterval? = 30 * 86_400
    /// How long an environment's agent may stay away before its dispatched and running jobs end
    /// `failed` with `agent_lost`; nil waits forever. Counted while this server runs.
    public var agentLostAfter: TimeInterval? = 86_400

    /// Makes a configuration with the contract's defaults.
    public init(dataDirectory: URL = URL(fileURLWithPath: "wharf-data"), httpHost: String = "0.0.0.0", httpPort: Int = 9000,
                zmqBind: String = "tcp://0.0.0.0:9001", publicURL: String? = nil, zmqPublicEndpoint: String? = nil) {
        self.dataDirectory = dataDirectory
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.zmqBind = zmqBind
        self.publicURL = publicURL
        self.zmqPublicEndpoint = zmqPublicEndpoint
    }
}
