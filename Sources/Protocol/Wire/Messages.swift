/// The first message an agent sends on every connection, and again whenever the server asks.
public struct AgentHello: Codable, Sendable, Equatable {
    /// The wire version the agent speaks.
    public var protocolVersion: Int
    public var agentVersion: String
    public var hostname: String
    public var dockerVersion: String
    /// `plugin` (docker compose) or `standalone` (docker-compose).
    public var composeFlavour: String
    public var composeVersion: String
    /// Whether the agent runs in edge mode (connects only at check-ins).
    public var edge: Bool
    /// Jobs the agent holds and has not finished.
    public var holding: [String]
    /// Finished jobs whose results the server has not acknowledged yet.
    public var results: [JobResult]

    /// Makes a hello.
    public init(
        protocolVersion: Int = WireCodec.version, agentVersion: String, hostname: String,
        dockerVersion: String, composeFlavour: String, composeVersion: String, edge: Bool,
        holding: [String], results: [JobResult]
    ) {
        self.protocolVersion = protocolVersion
        self.agentVersion = agentVersion
        self.hostname = hostname
        self.dockerVersion = dockerVersion
        self.composeFlavour = composeFlavour
        self.composeVersion = composeVersion
        self.edge = edge
        self.holding = holding
        self.results = results
    }
}

/// A batch of output lines of a running job.
public struct LogChunk: Codable, Sendable, Equatable {
    public var jobId: String
    /// Increases by one per chunk of a job, so the server can drop repeats.
    public var seq: Int
    public var lines: [String]

    /// Makes a chunk.
    public init(jobId: String, seq: Int, lines: [String]) {
        self.jobId = jobId
        self.seq = seq
        self.lines = lines
    }
}

/// The server's answer to a hello.
public struct Welcome: Codable, Sendable, Equatable {
    /// The environment the server knows this agent as (from its authenticated key).
    public var environmentId: String
    public var serverVersion: String
    /// Jobs waiting for this environment that the agent does not hold yet.
    public var pending: Int

    /// Makes a welcome.
    public init(environmentId: String, serverVersion: String, pending: Int) {
        self.environmentId = environmentId
        self.serverVersion = serverVersion
        self.pending = pending
    }
}

/// Messages an agent sends to the server.
public enum AgentMessage: Sendable, Equatable {
    case hello(AgentHello)
    /// The job is on the agent's disk.
    case ack(jobId: String)
    case started(jobId: String)
    case log(LogChunk)
    case result(JobResult)
    case ping
    /// The agent is leaving on purpose (an edge agent after its check-in).
    case bye
}

/// Messages the server sends to an agent.
public enum ServerMessage: Sendable, Equatable {
    case welcome(Welcome)
    case job(JobSpec)
    /// The result is on the server's disk; the agent may forget it.
    case resultAck(jobId: String)
    /// The agent holds a job the server has ended without it (`agent_lost` after a long absence,
    /// a stack removed with `--forget`) or does not know: it is not to run it. Sent before the
    /// welcome, for the jobs the hello said it holds.
    case cancel(jobId: String)
    /// The answer to a ping; `pending` counts jobs waiting that the agent does not hold.
    case pong(pending: Int)
    /// The server does not know this connection (for example after its restart): send hello.
    case helloRequired
    /// The server could not use a message.
    case error(code: String, message: String)
}
