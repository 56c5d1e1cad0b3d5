import Foundation

/// How a simulated fleet enrols and behaves: `wharf-agent --fleet N`.
///
/// A fleet is one process that plays N agents at once, each in its own environment
/// (`<prefix>-<index>`), each with its own CURVE key and DEALER connection, all served by one
/// thread. Every job is answered at once with success, so a benchmark measures the server's whole
/// path — intake, store, dispatch, acknowledgement, result — without Docker.
public struct FleetConfiguration: Sendable {
    /// How the fleet waits for its sockets.
    public enum PollMode: String, Sendable, CaseIterable {
        /// `epoll(7)` over every socket's `ZMQ_FD`: a wake-up costs what the sockets that signalled
        /// cost, whatever the fleet's size. Then `ZMQ_EVENTS` only for those and the ones just used.
        case epoll
        /// `zmq_poll` over every socket's `ZMQ_FD` (a plain `poll(2)`), then `ZMQ_EVENTS` only for the
        /// sockets that signalled or were just used. Cost per wake-up: about 0.2 µs per agent, so
        /// 1 ms at 5,000 agents; idle, 5,000 agents' pings and pongs kept a whole vCPU busy. Kept to compare.
        case fds
        /// `zmq_poll` over the sockets themselves. libzmq then asks every socket for `ZMQ_EVENTS`
        /// (a system call each) on every call: about 6 µs per agent per wake-up on a 2-vCPU VM, so
        /// 6 ms at 1,000 agents. Kept to compare.
        case sockets
    }

    /// The server's HTTP URL, such as `http://127.0.0.1:9000`.
    public var server: String
    /// The admin API token (environments are created with it).
    public var adminToken: String
    /// How many agents.
    public var count: Int
    /// Index of the first agent: agents are `<prefix>-<first>` … `<prefix>-<first + count - 1>`, so
    /// several fleet processes can share one naming scheme.
    public var first = 0
    /// Environment name prefix.
    public var prefix = "fleet"
    /// Where the roster (environment ids and secret keys, mode 0600) is kept between runs.
    public var dataDirectory: URL
    /// JSON lines: one per finished job (timestamps) and one per fleet event; nil for none.
    public var logFile: URL?
    public var pollMode: PollMode = .epoll
    /// libzmq I/O threads of the fleet's context.
    public var ioThreads: Int32 = 1
    /// Concurrent HTTP calls while enrolling.
    public var enrolConcurrency = 16
    /// Each agent pings this often (the real agent's interval), or as often as the server asks of a
    /// large fleet (`PingPolicy`); pings are spread evenly over it.
    public var pingInterval: Duration = .seconds(2)
    /// A result not acknowledged for this long is sent again (as the real agent does).
    public var resultResendInterval: Duration = .seconds(5)
    /// Create the environments and enrol the keys, then stop without connecting.
    public var enrolOnly = false
    /// The version agents report in their hello.
    public var agentVersion = WharfAgentVersion.current

    /// Makes a configuration.
    public init(server: String, adminToken: String, count: Int, dataDirectory: URL) {
        self.server = server
        self.adminToken = adminToken
        self.count = count
        self.dataDirectory = dataDirectory
    }

    /// The environment name of agent `index`.
    public func name(_ index: Int) -> String { "\(prefix)-\(index)" }
}

/// Why a fleet could not start or run.
public struct FleetError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    /// Makes an error with a human message.
    public init(_ message: String) { self.message = message }
}
