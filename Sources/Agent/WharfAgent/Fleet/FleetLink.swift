import CZeroMQ
import Foundation
import Logging
import Synchronization
import WharfProtocol
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// Counters of a running fleet, readable from any thread.
public struct FleetStats: Sendable, Equatable {
    public var agents = 0
    /// Agents the server has welcomed on their current connection.
    public var welcomed = 0
    /// Seconds from the first connect to every agent welcomed, once that happened.
    public var connectSeconds: Double?
    public var jobsReceived = 0
    public var resultsAcknowledged = 0
    public var resultsResent = 0
    public var sendsRefused = 0
    public var serverErrors = 0
    public var malformed = 0
    /// Poll loop: wake-ups, and time spent working between polls.
    public var iterations = 0
    public var busySeconds = 0.0
    public var maxIterationSeconds = 0.0
}

/// Counters shared between the fleet's thread and the rest of the process.
final class FleetCounters: Sendable {
    private let state = Mutex(FleetStats())

    /// The counters now.
    var value: FleetStats { state.withLock { $0 } }

    func update(_ body: (inout FleetStats) -> Void) { state.withLock { body(&$0) } }
}

/// Holds every agent's DEALER connection in one thread that waits with `zmq_poll`.
///
/// libzmq sockets are not thread-safe, so the sockets are created, used and closed by the fleet's
/// own thread only; other threads see counters (`stats`) and can stop it (an eventfd in the poll set).
final class FleetLink: Sendable {
    private let configuration: FleetConfiguration
    private let roster: FleetRoster
    private let log: FleetLog
    private let logger: Logger
    private let hostname: String
    private let stopFD: Int32
    /// Counters, refreshed by the fleet's thread a few times a second.
    let stats = FleetCounters()

    init(configuration: FleetConfiguration, roster: FleetRoster, log: FleetLog, hostname: String, logger: Logger) throws {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw FleetError("eventfd: \(String(cString: strerror(errno)))") }
        self.stopFD = fd
        self.configuration = configuration
        self.roster = roster
        self.log = log
        self.hostname = hostname
        self.logger = logger
    }

    deinit { close(stopFD) }

    /// Asks the fleet's thread to close every connection and end.
    func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, MemoryLayout<UInt64>.size)
    }

    /// Runs the fleet's thread until `stop()` or cancellation.
    func run() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [self] in
                    do {
                        let loop = try FleetLoop(configuration: configuration, roster: roster, log: log, hostname: hostname,
                                                 logger: logger, stopFD: stopFD, stats: stats)
                        loop.run()
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "wharf-fleet"
                thread.start()
            }
        } onCancel: {
            stop()
        }
    }
}

/// The fleet thread's state: the context, the sockets and the agents. Lives and dies on that thread.
private final class FleetLoop {
    private let configuration: FleetConfiguration
    private let log: FleetLog
    private let logger: Logger
    private let hostname: String
    private let stopFD: Int32
    private let sharedStats: FleetCounters
    private let endpoint: String
    private let context: UnsafeMutableRawPointer
    private var sockets: [UnsafeMutableRawPointer] = []
    private var agents: [FleetAgent] = []
    private var needsHello: Set<Int> = []
    /// When each agent last sent and last heard a message (monotonic seconds): an agent pings only
    /// when its link has been quiet for an interval either way, as the real agent does.
    private var lastSent: [Double] = []
    private var lastHeard: [Double] = []
    /// The ping interval the server last asked for (`PingPolicy`); taken at the next ping round.
    private var askedPingSeconds: Int?
    /// Sockets to service before the next wait: used outside `service` (their ZMQ_EVENTS must be read
    /// again, because ZMQ_FD only signals once a socket has been found without input), or left with
    /// input when they used up their share of an iteration.
    private var check: [Int] = []
    private var inCheck: [Bool] = []
    /// The most messages one socket may handle per iteration, so that one busy agent cannot starve the
    /// others, the pings and the timers.
    private let shareOfIteration = 32
    private let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
    private var stats = FleetStats()
    private var connectStarted = 0.0
    private var warnings = 0

    init(configuration: FleetConfiguration, roster: FleetRoster, log: FleetLog, hostname: String, logger: Logger,
         stopFD: Int32, stats: FleetCounters) throws {
        self.configuration = configuration
        self.log = log
        self.logger = logger
        self.hostname = hostname
        self.stopFD = stopFD
        self.sharedStats = stats
        self.endpoint = roster.endpoint
        guard let context = zmq_ctx_new() else { throw FleetError("zmq_ctx_new failed") }
        self.context = context
        // The default of 1023 sockets per context is far too few for a fleet.
        zmq_ctx_set(context, ZMQ_MAX_SOCKETS, Int32(roster.members.count + 64))
        zmq_ctx_set(context, ZMQ_IO_THREADS, configuration.ioThreads)
        let serverKey = try CurveKey(z85: roster.serverPublicKey)
        log.event("connecting", [("agents", Double(roster.members.count))])
        connectStarted = FleetClock.monotonic()
        do {
            for member in roster.members {
                let pair = try CurveKeyPair(secretKey: CurveKey(z85: member.secretKey))
                guard let socket = zmq_socket(context, ZMQ_DEALER) else { throw FleetError("zmq_socket: \(Self.lastError())") }
                sockets.append(socket)
                try Self.configure(socket, pair: pair, serverKey: serverKey, endpoint: endpoint)
                agents.append(FleetAgent(index: member.index, name: member.name, environmentId: member.environmentId))
            }
        } catch {
            for socket in sockets { zmq_close(socket) }
            zmq_ctx_term(context)
            message.deallocate()
            throw error
        }
        self.stats.agents = agents.count
    }

    deinit {
        for socket in sockets { zmq_close(socket) }
        zmq_ctx_term(context)
        message.deallocate()
    }

    private static func lastError() -> String { String(cString: zmq_strerror(zmq_errno())) }

    /// The options `AgentRuntime` uses, so the server sees the same connections it would from real agents.
    private static func configure(_ socket: UnsafeMutableRawPointer, pair: CurveKeyPair, serverKey: CurveKey, endpoint: String) throws {
        func set(_ option: Int32, _ value: Int32) throws {
            var value = value
            guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
                throw FleetError("zmq_setsockopt(\(option)): \(lastError())")
            }
        }
        func set(_ option: Int32, bytes: [UInt8]) throws {
            let rc = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
            guard rc == 0 else { throw FleetError("zmq_setsockopt(\(option)): \(lastError())") }
        }
        try set(ZMQ_LINGER, 0)
        try set(ZMQ_CURVE_SERVERKEY, bytes: serverKey.bytes)
        try set(ZMQ_CURVE_PUBLICKEY, bytes: pair.publicKey.bytes)
        try set(ZMQ_CURVE_SECRETKEY, bytes: pair.secretKey.bytes)
        // No ZMTP heartbeats, as the real agent (it finds a dead server by its pings). A TTL in
        // particular would make the server's libzmq arm a timer at each PING and cancel it, by a
        // linear search of all its timers, at the agent's next message.
        try set(ZMQ_HEARTBEAT_IVL, 0)
        try set(ZMQ_HEARTBEAT_TTL, 0)
        // Jittered back-off so that the fleet does not reconnect in lock-step after a server restart.
        let jitter = Int32.random(in: 0...250)
        try set(ZMQ_RECONNECT_IVL, 250 + jitter)
        try set(ZMQ_RECONNECT_IVL_MAX, 2000 + 4 * jitter)
        var maxSize = Int64(WireCodec.maxFrameBytes)
        guard zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &maxSize, MemoryLayout<Int64>.size) == 0 else {
            throw FleetError("zmq_setsockopt(MAXMSGSIZE): \(lastError())")
        }
        try set(ZMQ_SNDHWM, 10_000)
        guard zmq_connect(socket, endpoint) == 0 else { throw FleetError("zmq_connect(\(endpoint)): \(lastError())") }
    }

    // MARK: The loop

    func run() {
        let count = sockets.count
        lastSent = [Double](repeating: 0, count: count)
        lastHeard = [Double](repeating: 0, count: count)
        for index in 0..<count { sendHello(index) }
        var items = [zmq_pollitem_t](repeating: zmq_pollitem_t(), count: count + 1)
        // With epoll, each socket's ZMQ_FD is registered once, with the socket's index as its data.
        let waiter = configuration.pollMode == .epoll ? EpollWaiter(logger: logger) : nil
        for index in 0..<count {
            switch configuration.pollMode {
            case .epoll, .fds:
                var fd: Int32 = -1
                var size = MemoryLayout<Int32>.size
                zmq_getsockopt(sockets[index], ZMQ_FD, &fd, &size)
                items[index].fd = fd  // with epoll too: should it be unavailable, the loop polls these
                waiter?.add(fd, tag: UInt32(index))
            case .sockets:
                items[index].socket = sockets[index]
            }
            items[index].events = Int16(ZMQ_POLLIN)
        }
        items[count].fd = stopFD
        items[count].events = Int16(ZMQ_POLLIN)
        waiter?.add(stopFD, tag: EpollWaiter.stopTag)
        inCheck = [Bool](repeating: false, count: count)
        for index in 0..<count { recheck(index) }

        var pingInterval = Self.seconds(configuration.pingInterval)
        let resendInterval = Self.seconds(configuration.resultResendInterval)
        var pingCursor = 0
        var pingRoundStart = FleetClock.monotonic()
        var nextResendCheck = pingRoundStart + 1
        var nextFlush = pingRoundStart + 0.05
        var nextPublish = pingRoundStart + 0.1
        var nextReport = pingRoundStart + 5
        var ioFailures = 0

        while true {
            let started = FleetClock.monotonic()
            // Sockets used since the last wait, or left with input, first: once each per iteration.
            let due = check
            check.removeAll(keepingCapacity: true)
            for index in due {
                inCheck[index] = false
                service(index)
            }
            var now = FleetClock.monotonic()
            // Pings, spread evenly over the interval: agent k of a round is due k/count of the way in.
            while count > 0 {
                let due = pingRoundStart + pingInterval * Double(pingCursor) / Double(count)
                if due > now { break }
                if now - due > pingInterval { pingRoundStart = now - pingInterval * Double(pingCursor) / Double(count) }
                if needsHello.contains(pingCursor) {
                    sendHello(pingCursor)
                } else if now - lastSent[pingCursor] >= pingInterval || now - lastHeard[pingCursor] >= pingInterval {
                    send(.ping, to: pingCursor)
                }
                recheck(pingCursor)
                pingCursor += 1
                if pingCursor == count {
                    pingCursor = 0
                    pingRoundStart += pingInterval
                    // The server's interval for a large fleet, as real agents take it (one for all).
                    pingInterval = Self.seconds(PingPolicy.interval(configuration.pingInterval, asked: askedPingSeconds))
                }
            }
            if now >= nextResendCheck {
                nextResendCheck = now + 1
                let wall = FleetClock.wall()
                for index in 0..<count where agents[index].owesResults {
                    for result in agents[index].dueResults(now: wall, after: resendInterval) {
                        stats.resultsResent += 1
                        send(.result(result), to: index)
                        recheck(index)
                    }
                }
            }
            if now >= nextFlush {
                nextFlush = now + 0.05
                log.flush()
            }
            if now >= nextPublish {
                nextPublish = now + 0.1
                let snapshot = stats
                sharedStats.update { $0 = snapshot }
            }
            if now >= nextReport {
                nextReport = now + 5
                logger.info("fleet", metadata: [
                    "agents": "\(count)", "welcomed": "\(stats.welcomed)", "jobs": "\(stats.jobsReceived)",
                    "acked": "\(stats.resultsAcknowledged)", "errors": "\(stats.serverErrors)",
                ])
            }
            now = FleetClock.monotonic()
            let busy = now - started
            stats.iterations += 1
            stats.busySeconds += busy
            stats.maxIterationSeconds = max(stats.maxIterationSeconds, busy)

            let nextPing = count > 0 ? pingRoundStart + pingInterval * Double(pingCursor) / Double(count) : now + 1
            let wait = min(nextPing, nextResendCheck, nextFlush, nextPublish, nextReport) - now
            let timeout = check.isEmpty ? max(0, Int(Foundation.ceil(wait * 1000))) : 0
            if let waiter {
                guard let ready = waiter.wait(timeoutMilliseconds: Int32(clamping: timeout)) else {
                    ioFailures += 1
                    if ioFailures > 10 { break }
                    continue
                }
                if ready.contains(EpollWaiter.stopTag) { break }
                for tag in ready { service(Int(tag)) }
                continue
            }
            let rc = zmq_poll(&items, Int32(items.count), timeout)
            if rc < 0 {
                if zmq_errno() == EINTR { continue }
                ioFailures += 1
                logger.error("zmq_poll failed", metadata: ["error": "\(Self.lastError())"])
                if ioFailures > 10 { break }
                continue
            }
            if items[count].revents != 0 { break }
            if rc > 0 {
                for index in 0..<count where items[index].revents != 0 { service(index) }
            }
        }
        log.event("stopped", [
            ("agents", Double(count)), ("welcomed", Double(stats.welcomed)), ("jobs", Double(stats.jobsReceived)),
            ("acked", Double(stats.resultsAcknowledged)), ("resent", Double(stats.resultsResent)),
            ("errors", Double(stats.serverErrors)), ("iterations", Double(stats.iterations)),
            ("busySeconds", stats.busySeconds), ("maxIterationSeconds", stats.maxIterationSeconds),
        ])
        log.flush()
        let snapshot = stats
        sharedStats.update { $0 = snapshot }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    // MARK: One socket

    /// Services `index` again before the next wait.
    private func recheck(_ index: Int) {
        guard !inCheck[index] else { return }
        inCheck[index] = true
        check.append(index)
    }

    /// Reads and answers what is waiting on a socket, until ZMQ_EVENTS says there is no more input or
    /// the socket has had its share of this iteration (then it goes first in the next one).
    private func service(_ index: Int) {
        let socket = sockets[index]
        var budget = shareOfIteration
        while true {
            var events: Int32 = 0
            var size = MemoryLayout<Int32>.size
            guard zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) == 0, events & Int32(ZMQ_POLLIN) != 0 else { return }
            while budget > 0, let frame = receive(socket) {
                handle(frame, from: index)
                budget -= 1
            }
            if budget == 0 {
                recheck(index)
                return
            }
        }
    }

    /// One whole message, its last frame (a DEALER gets only the body), or nil when none is waiting.
    private func receive(_ socket: UnsafeMutableRawPointer) -> [UInt8]? {
        var last: [UInt8]?
        while true {
            zmq_msg_init(message)
            if zmq_msg_recv(message, socket, ZMQ_DONTWAIT) < 0 {
                zmq_msg_close(message)
                return last
            }
            let size = zmq_msg_size(message)
            if size > 0, let data = zmq_msg_data(message) {
                last = Array(UnsafeRawBufferPointer(start: data, count: size))
            } else {
                last = []
            }
            let more = zmq_msg_more(message) != 0
            zmq_msg_close(message)
            if !more { return last }
        }
    }

    private func handle(_ frame: [UInt8], from index: Int) {
        let decoded: ServerMessage
        do {
            decoded = try WireCodec.decodeServerMessage(frame)
        } catch {
            stats.malformed += 1
            return
        }
        lastHeard[index] = FleetClock.monotonic()
        switch decoded {
        case .welcome(let welcome): askedPingSeconds = welcome.pingSeconds
        case .pong(_, let pingSeconds): askedPingSeconds = pingSeconds
        default: break
        }
        let reaction = agents[index].receive(decoded, now: FleetClock.wall())
        if reaction.welcomed {
            stats.welcomed += 1
            if stats.welcomed == agents.count, stats.connectSeconds == nil {
                let seconds = FleetClock.monotonic() - connectStarted
                stats.connectSeconds = seconds
                let welcomed = stats.welcomed
                sharedStats.update { $0.connectSeconds = seconds; $0.welcomed = welcomed }
                log.event("connected", [("agents", Double(agents.count)), ("seconds", seconds)])
                logger.info("every agent of the fleet is connected", metadata: ["agents": "\(agents.count)", "seconds": "\(seconds)"])
            }
        }
        if reaction.unwelcomed { stats.welcomed -= 1 }
        if reaction.sendHello { sendHello(index) }
        if reaction.newJob { stats.jobsReceived += 1 }
        for reply in reaction.replies {
            let sent = send(reply, to: index)
            if sent, case .result(let result) = reply { agents[index].resultSent(result.jobId, at: FleetClock.wall()) }
        }
        if let finished = reaction.finished {
            stats.resultsAcknowledged += 1
            log.job(finished, agent: agents[index])
        }
        if let error = reaction.error {
            stats.serverErrors += 1
            if warnings < 20 {
                warnings += 1
                logger.warning("server reported an error", metadata: ["agent": "\(agents[index].name)", "error": "\(error)"])
            }
        }
    }

    private func sendHello(_ index: Int) {
        let hello = agents[index].hello(hostname: "\(hostname)/\(agents[index].name)", version: configuration.agentVersion)
        if send(hello, to: index) { needsHello.remove(index) } else { needsHello.insert(index) }
    }

    /// Sends without blocking; false when libzmq would not take the message now (a full pipe).
    @discardableResult
    private func send(_ message: AgentMessage, to index: Int) -> Bool {
        let bytes = WireCodec.encode(message)
        let rc = bytes.withUnsafeBytes { zmq_send(sockets[index], $0.baseAddress, $0.count, ZMQ_DONTWAIT) }
        if rc < 0 {
            stats.sendsRefused += 1
            return false
        }
        lastSent[index] = FleetClock.monotonic()
        return true
    }
}

/// An epoll set whose events carry a tag (a socket's index), for `FleetLink`'s `.epoll` mode.
private final class EpollWaiter {
    static let stopTag = UInt32.max

    private let fd: Int32
    private let logger: Logger
    private var events = [epoll_event](repeating: epoll_event(), count: 512)
    private var ready: [UInt32] = []

    init?(logger: Logger) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        self.logger = logger
        guard fd >= 0 else {
            logger.error("epoll_create1 failed", metadata: ["errno": "\(errno)"])
            return nil
        }
    }

    deinit { close(fd) }

    /// Watches `descriptor` for input (level-triggered, as `poll(2)` does).
    func add(_ descriptor: Int32, tag: UInt32) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u32 = tag
        if epoll_ctl(fd, EPOLL_CTL_ADD, descriptor, &event) != 0 {
            logger.error("epoll_ctl failed", metadata: ["errno": "\(errno)", "tag": "\(tag)"])
        }
    }

    /// The tags of the descriptors with input, after at most `timeoutMilliseconds`; empty on a
    /// timeout or a signal, nil when epoll failed.
    func wait(timeoutMilliseconds: Int32) -> [UInt32]? {
        ready.removeAll(keepingCapacity: true)
        let count = events.withUnsafeMutableBufferPointer { epoll_wait(fd, $0.baseAddress, Int32($0.count), timeoutMilliseconds) }
        if count < 0 {
            if errno == EINTR { return ready }
            logger.error("epoll_wait failed", metadata: ["errno": "\(errno)"])
            return nil
        }
        for index in 0..<Int(count) { ready.append(events[index].data.u32) }
        return ready
    }
}
