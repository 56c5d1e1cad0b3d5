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
    /// The ping interval the server asks for, in seconds, when it is longer than the default
    /// (a large fleet: ``PingPolicy``); nil (left out of the frame) for the agent's own.
    public var pingSeconds: Int?

    /// Makes a welcome.
    public init(environmentId: String, serverVersion: String, pending: Int, pingSeconds: Int? = nil) {
        self.environmentId = environmentId
        self.serverVersion = serverVersion
        self.pending = pending
        self.pingSeconds = pingSeconds
    }

    private enum CodingKeys: String, CodingKey { case environmentId, serverVersion, pending, pingSeconds }

    /// Reads a welcome; a `pingSeconds` this side cannot read (a later server's) counts as none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        environmentId = try container.decode(String.self, forKey: .environmentId)
        serverVersion = try container.decode(String.self, forKey: .serverVersion)
        pending = try container.decode(Int.self, forKey: .pending)
        pingSeconds = try? container.decodeIfPresent(Int.self, forKey: .pingSeconds)
    }
}

/// How often agents ping, and when either side of the link takes its silence as a dead link.
///
/// An agent pings when its link has been quiet for its interval (nothing sent or nothing heard), and
/// the server answers each ping. Idle, every agent costs the server a ping and a pong per interval:
/// 5,000 of each a second for 10,000 agents at the default 2 s, which took about 40 % of a vCPU
/// (bench/FINDINGS.md, eighteenth pass). So the server asks a large fleet for a longer interval
/// (in the welcome and in each pong), as Nomad scales its heartbeats: enough to keep its agents'
/// pings at 1,000 a second up to 4,000 agents. Past that the contract's bound caps the interval
/// (2,500 pings a second at 10,000): an agent's environment shows `disconnected` within 15 s of
/// its death, so the server waits at most `serverTimeoutCap` for a silent agent it asked for
/// more, and asks for at most `maxSeconds`, three intervals in it.
public enum PingPolicy {
    /// An agent's interval when the server asks for none.
    public static let defaultSeconds = 2
    /// An agent that hears nothing from the server for this many intervals takes the link as dead
    /// (10 s at the default); the server waits as long, up to `serverTimeoutCap`.
    public static let silentIntervals = 5
    /// The longest interval the server asks for, and an agent takes.
    public static let maxSeconds = 4
    /// The longest silence the server waits for from an agent it asked for a longer interval:
    /// with its 0.5-s check and a busy dispatcher's lag, within the contract's 15 s.
    public static let serverTimeoutCap: Duration = .seconds(12)

    /// The interval, in whole seconds, for `agents` connected agents to send at most `perSecond`
    /// pings a second together, up to `maxSeconds`; nil when the default does (2,000 agents at
    /// 1,000 a second).
    public static func seconds(agents: Int, perSecond: Int) -> Int? {
        guard perSecond > 0 else { return nil }
        let seconds = min(maxSeconds, (agents + perSecond - 1) / perSecond)
        return seconds > defaultSeconds ? seconds : nil
    }

    /// `seconds(agents:perSecond:)` as a server keeps asking while its fleet changes, from what it
    /// asks now (`current`): longer at once, shorter only once the fleet is a tenth below the
    /// size that asks `current`, so that a fleet hovering at a threshold (agents reconnecting)
    /// does not flip every agent's interval back and forth.
    public static func seconds(agents: Int, perSecond: Int, current: Int?) -> Int? {
        let target = seconds(agents: agents, perSecond: perSecond)
        guard let current, (target ?? 0) < current else { return target }
        // Shorter: no shorter than what a tenth more agents would be asked for.
        let margin = seconds(agents: agents + agents / 10, perSecond: perSecond)
        return (margin ?? 0) >= current ? current : margin
    }

    /// An asked interval as an agent takes it: within 1...`maxSeconds` (a server that asks for
    /// more gets pings more often than it asked, which is safe).
    private static func clamped(_ asked: Int) -> Int { min(max(asked, 1), maxSeconds) }

    /// The interval an agent configured with `interval` uses when the server asked for `asked`
    /// seconds: the longer of the two.
    public static func interval(_ interval: Duration, asked: Int?) -> Duration {
        guard let asked else { return interval }
        return max(interval, .seconds(clamped(asked)))
    }

    /// How long an agent waits, hearing nothing, before it takes the link as dead: its own
    /// `timeout`, or `silentIntervals` of the interval the server asked for, whichever is longer.
    public static func timeout(_ timeout: Duration, asked: Int?) -> Duration {
        guard let asked else { return timeout }
        return max(timeout, .seconds(clamped(asked) * silentIntervals))
    }

    /// How long the server waits for a silent agent it asked for `asked` seconds: its own
    /// `timeout`, or `silentIntervals` of the asked interval up to `cap`, whichever is longer.
    public static func serverTimeout(_ timeout: Duration, asked: Int?, cap: Duration = serverTimeoutCap) -> Duration {
        guard let asked else { return timeout }
        return max(timeout, min(.seconds(clamped(asked) * silentIntervals), cap))
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
    /// `pingSeconds` is the interval the server asks for, when longer than the default (``PingPolicy``).
    case pong(pending: Int, pingSeconds: Int? = nil)
    /// The server does not know this connection (for example after its restart): send hello.
    case helloRequired
    /// The server could not use a message.
    case error(code: String, message: String)
}
