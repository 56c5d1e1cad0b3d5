import Foundation
import Logging
import Synchronization
import WharfProtocol
import ZeroMQ

/// The agent: holds the link to the server, keeps its jobs on disk, and runs them on the engine.
///
/// A job is written to the journal before it is acknowledged, run once (or again from the start
/// after a crash), and its result is kept and resent until the server acknowledges it. Jobs of one
/// stack run one at a time in order; different stacks run side by side, up to `maxConcurrentStacks`.
public actor AgentRuntime {
    /// How the agent reaches its server and behaves on the link.
    public struct Configuration: Sendable {
        public var endpoint: String
        public var serverKey: CurveKey
        public var keyPair: CurveKeyPair
        public var hostname: String
        public var version: String = WharfAgentVersion.current
        public var edge = false
        public var checkinInterval: Duration = .seconds(30)
        public var maxConcurrentStacks = 4
        /// Pings when the link has been quiet this long; a server with a large fleet may ask for
        /// longer (``PingPolicy``), and an agent not in edge mode then pings that often.
        public var pingInterval: Duration = .seconds(PingPolicy.defaultSeconds)
        /// With nothing heard for this long, the server is presumed gone (the socket keeps
        /// reconnecting); longer when the server asked for a longer ping interval.
        public var serverTimeout: Duration = .seconds(PingPolicy.defaultSeconds * PingPolicy.silentIntervals)
        /// Results not acknowledged after this long are sent again.
        public var resultResendInterval: Duration = .seconds(5)
        /// When the agent is told to stop (SIGTERM), how long running jobs may take to finish and
        /// report before they are cut short (they then run again from the start at the next start).
        /// Inside systemd's stop timeout for the shipped unit (60 s). Shorter than the default health
        /// wait (60 s): a deploy cut short while it waits keeps, in its stack's directory, the record
        /// of what ran before it, and its run again rolls back to that (``StackFiles/InFlight``).
        public var stopGracePeriod: Duration = .seconds(45)

        /// Makes a configuration.
        public init(endpoint: String, serverKey: CurveKey, keyPair: CurveKeyPair, hostname: String) {
            self.endpoint = endpoint
            self.serverKey = serverKey
            self.keyPair = keyPair
            self.hostname = hostname
        }
    }

    private let configuration: Configuration
    private let engine: any ContainerEngine
    private let journal: JobJournal
    private let logger: Logger
    private let context: ZMQContext
    private let logs = LogBuffer()

    private var channel: ZMQChannel?
    private var engineInfo = EngineInfo(dockerVersion: "unknown", composeFlavour: .plugin, composeVersion: "unknown")
    private var lastHeard: ContinuousClock.Instant?
    /// The ping interval the server last asked for (welcome or pong); nil for the configured one.
    private var askedPingSeconds: Int?
    private var serverReachable = false
    private var welcomed = false
    private var pendingOnServer = 0
    private var queues: [String: [JobSpec]] = [:]
    private var busyStacks: Set<String> = []
    private var queued: Set<String> = []
    /// Jobs start only once the server has welcomed this process's first connection: it first
    /// says which of the jobs the journal held it ended without this agent (`cancel`).
    private var released = false
    private var unacknowledged: [String: (result: JobResult, sentAt: ContinuousClock.Instant)] = [:]
    /// The tasks of the jobs running now, by job ID.
    private var running: [String: Task<Void, Never>] = [:]
    /// Set once the agent is told to stop: no job starts after that.
    private var stopping: Stopping?
    /// Set when the server refuses this agent for good (`agent_revoked`, `agent_superseded`):
    /// `run` stops and throws it.
    private var refusal: (any Error & Sendable)?

    private struct Stopping {
        var deadline: ContinuousClock.Instant
        /// Whether the jobs still running at the deadline have been cancelled.
        var cutShort = false
    }

    /// Makes an agent; `context` may be shared by many agents in one process (the fleet simulator).
    public init(configuration: Configuration, engine: any ContainerEngine, journal: JobJournal,
                context: ZMQContext, logger: Logger) {
        self.configuration = configuration
        self.engine = engine
        self.journal = journal
        self.context = context
        self.logger = logger
    }

    /// Runs until the task is cancelled. Cancelled, a connected agent starts no more jobs, lets
    /// those running finish and report (up to ``Configuration/stopGracePeriod``), then returns;
    /// jobs not started, or cut short, stay in the journal and run at the next start.
    ///
    /// Throws ``AgentRevokedError`` when the server says this agent's key is no longer enrolled
    /// (another agent enrolled in its environment, or the environment was deleted), once its
    /// running jobs have ended as at a stop (the server no longer believes their results, but a
    /// deploy cut short would leave its stack half-deployed on this node).
    ///
    /// Throws ``AgentSupersededError`` when another connection with this agent's key said hello
    /// after it (a copy of its data directory on another host), once its running jobs have ended
    /// and their results are in; the jobs it held and had not started are dropped from its journal,
    /// since the server gives them to that connection.
    public func run() async throws {
        await refreshEngineInfo()
        // The server never asks again for a job whose result it acknowledged a month ago.
        journal.pruneTombstones(olderThan: 30 * 24 * 3600)
        for result in journal.pendingResults() { unacknowledged[result.jobId] = (result, .now - .seconds(3600)) }
        for spec in journal.heldJobs() {
            logger.info("running again a job cut short by a restart", metadata: ["job.id": "\(spec.id)", "stack.id": "\(spec.stackId)"])
            schedule(spec)
        }
        if configuration.edge {
            // As below: a stop ends the check-in under way once its running jobs have reported.
            let checkingIn = Task { try await self.runEdge() }
            try await withTaskCancellationHandler {
                try await checkingIn.value
            } onCancel: {
                Task { await self.beginStop() }
            }
        } else {
            try connect()
            // The link is served by a task of its own, which the stop does not cancel: running jobs
            // still send their logs and results while the agent stops.
            let serving = Task { await self.serve(until: { await self.stopped() }) }
            await withTaskCancellationHandler {
                await serving.value
            } onCancel: {
                Task { await self.beginStop() }
            }
        }
        await disconnect()
        // Jobs held and not started (their specs carry registry credentials) are dropped: the
        // server gives them to the connection that replaced this one, or to the environment's new
        // agent, or they went with the environment. This key will not run them.
        if refusal is AgentSupersededError || refusal is AgentRevokedError {
            let dropped = journal.discardHeld()
            if dropped > 0 {
                logger.notice(refusal is AgentSupersededError
                              ? "left out jobs not started: the server gives them to the connection that replaced this one"
                              : "left out jobs not started: this agent's key was revoked",
                              metadata: ["jobs": "\(dropped)"])
            }
        }
        if let refusal { throw refusal }
    }

    // MARK: Connection

    private func connect() throws {
        let configuration = configuration
        channel = try ZMQChannel(context: context, type: .dealer, name: "wharf-dealer") { socket in
            try socket.makeCurveClient(keyPair: configuration.keyPair, serverKey: configuration.serverKey)
            // No ZMTP heartbeats: the pings find a dead server (`tick`), and a heartbeat as well
            // would double the idle traffic of every agent (bench/FINDINGS.md).
            try socket.setHeartbeat(intervalMs: 0, timeoutMs: 0, ttlMs: 0)
            // Jittered back-off so that a fleet does not reconnect in lock-step after a server restart.
            let jitter = Int32.random(in: 0...250)
            try socket.setReconnectInterval(milliseconds: 250 + jitter, maxMilliseconds: 2000 + 4 * jitter)
            try socket.setMaxMessageSize(Int64(WireCodec.maxFrameBytes))
            try socket.setSendHighWaterMark(10_000)
            try socket.connect(configuration.endpoint)
        }
        welcomed = false
        lastHeard = nil
        sendHello()
    }

    private func disconnect() async {
        if let channel {
            self.channel = nil
            await channel.shutdown()
        }
        welcomed = false
    }

    private func send(_ message: AgentMessage) {
        lastSent = .now
        channel?.post([WireCodec.encode(message)])
    }

    private func sendHello() {
        let hello = AgentHello(
            agentVersion: configuration.version, hostname: configuration.hostname,
            dockerVersion: engineInfo.dockerVersion, composeFlavour: engineInfo.composeFlavour.rawValue,
            composeVersion: engineInfo.composeVersion, edge: configuration.edge,
            holding: Array(queued).sorted(), results: unacknowledged.values.map(\.result).sorted { $0.jobId < $1.jobId }
        )
        for id in unacknowledged.keys { unacknowledged[id]?.sentAt = .now }
        send(.hello(hello))
    }

    private func refreshEngineInfo() async {
        do {
            engineInfo = try await engine.info()
        } catch {
            logger.warning("container engine unreachable", metadata: ["error": "\(error)"])
        }
    }

    /// Serves the current connection until `done` says so or the task is cancelled.
    private func serve(until done: @escaping @Sendable () async -> Bool) async {
        guard let channel else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in channel.incoming {
                    await self.receive(message)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    await self.tick()
                    if await done() {
                        // Say goodbye so the server shows the environment disconnected at once; linger lets it out.
                        await self.send(.bye)
                        try? await Task.sleep(for: .milliseconds(100))
                        return
                    }
                }
            }
            await group.next()
            group.cancelAll()
            await channel.shutdown()
            await group.waitForAll()
        }
    }

    private var lastPing = ContinuousClock.now - .seconds(60)
    private var lastSent = ContinuousClock.now - .seconds(60)
    private var lastReconnect = ContinuousClock.now - .seconds(3600)

    /// Whether to ping now: at most once per `interval`, and only when the link has been quiet for an
    /// interval either way — any message sent tells the server this agent is alive, any message heard
    /// tells the agent the server is, so a busy link needs no pings. An edge agent pings on schedule
    /// (the pong says what is pending).
    static func pingDue(now: ContinuousClock.Instant, lastPing: ContinuousClock.Instant, lastSent: ContinuousClock.Instant,
                        lastHeard: ContinuousClock.Instant?, interval: Duration, edge: Bool) -> Bool {
        guard now - lastPing >= interval else { return false }
        if edge { return true }
        return now - lastSent >= interval || lastHeard.map { now - $0 >= interval } ?? true
    }

    private func tick() {
        let now = ContinuousClock.now
        flushLogs()
        // An edge agent's pongs say what is pending during its short check-in: it keeps its own interval.
        let asked = configuration.edge ? nil : askedPingSeconds
        if Self.pingDue(now: now, lastPing: lastPing, lastSent: lastSent, lastHeard: lastHeard,
                        interval: PingPolicy.interval(configuration.pingInterval, asked: asked), edge: configuration.edge) {
            lastPing = now
            send(.ping)
        }
        let serverTimeout = PingPolicy.timeout(configuration.serverTimeout, asked: asked)
        if !configuration.edge, let lastHeard, now - lastHeard > serverTimeout,
           now - lastReconnect >= serverTimeout {
            if serverReachable {
                serverReachable = false
                welcomed = false
                logger.warning("server unreachable; reconnecting", metadata: ["endpoint": "\(configuration.endpoint)"])
            }
            // Nothing heard, not even a pong: the connection may be dead without a reset (the
            // server's host gone, a NAT that forgot the flow), which libzmq would keep. A new one.
            lastReconnect = now
            channel?.reconnect(configuration.endpoint)
            sendHello()
        }
        for (id, entry) in unacknowledged where now - entry.sentAt >= configuration.resultResendInterval {
            unacknowledged[id]?.sentAt = now
            send(.result(entry.result))
        }
    }

    /// Follows the ping interval the server asks for (nil: the configured one again).
    private func takePingInterval(_ seconds: Int?) {
        guard seconds != askedPingSeconds else { return }
        askedPingSeconds = seconds
        guard !configuration.edge else { return }
        let interval = PingPolicy.interval(configuration.pingInterval, asked: seconds)
        logger.info("the server asked for another ping interval", metadata: [
            "ping.interval": "\(interval)", "server.timeout": "\(PingPolicy.timeout(configuration.serverTimeout, asked: seconds))",
        ])
    }

    // MARK: Edge mode

    /// Check-ins until a stop (``beginStop()``) or a refusal. A stop between check-ins ends the
    /// loop at once unless a job still runs or a result is owed (a check-in that found the server
    /// away); then one more check-in reports them, within the stop's grace period.
    private func runEdge() async throws {
        while true {
            try connect()
            let started = ContinuousClock.now
            await serve(until: { [weak self] in
                guard let self else { return true }
                return await self.edgeCheckInDone(since: started)
            })
            await disconnect()
            if refusal != nil || stopping != nil { return }
            logger.info("edge check-in done", metadata: ["next.in": "\(configuration.checkinInterval)"])
            let next = ContinuousClock.now + configuration.checkinInterval
            while stopping == nil, ContinuousClock.now < next {
                try await Task.sleep(for: min(.milliseconds(200), next - .now))
            }
            if stopping != nil, running.isEmpty, unacknowledged.isEmpty { return }
        }
    }

    private func edgeCheckInDone(since started: ContinuousClock.Instant) -> Bool {
        if refusal != nil || stopping != nil { return stopped() }
        if !welcomed {
            // A server that does not answer is tried again at the next check-in.
            return ContinuousClock.now - started > configuration.serverTimeout
        }
        return queued.isEmpty && unacknowledged.isEmpty && pendingOnServer == 0 && logs.isEmpty
    }

    // MARK: Incoming

    private func receive(_ message: ZMQMessage) async {
        guard let frame = message.frames.last else { return }
        let decoded: ServerMessage
        do {
            decoded = try WireCodec.decodeServerMessage(frame)
        } catch {
            logger.warning("dropped a malformed message from the server", metadata: ["error": "\(error)"])
            return
        }
        lastHeard = .now
        if !serverReachable {
            serverReachable = true
            logger.info("connected to server", metadata: ["endpoint": "\(configuration.endpoint)"])
        }
        switch decoded {
        case .welcome(let welcome):
            welcomed = true
            pendingOnServer = welcome.pending
            takePingInterval(welcome.pingSeconds)
            if !released {
                released = true
                pump()
            }
        case .helloRequired:
            await refreshEngineInfo()
            sendHello()
        case .pong(let pending, let pingSeconds):
            pendingOnServer = pending
            takePingInterval(pingSeconds)
        case .job(let spec):
            accept(spec)
        case .resultAck(let id):
            unacknowledged[id] = nil
            do {
                try journal.acknowledge(id)
            } catch {
                logger.error("could not record an acknowledged result", metadata: ["job.id": "\(id)", "error": "\(error)"])
            }
            if configuration.edge { lastPing = .now - .seconds(60) }
        case .cancel(let id):
            cancel(id)
        case .error(AgentRevokedError.code, let text):
            guard refusal == nil else { return }
            refusal = AgentRevokedError(message: text)
            // No new job starts; a deploy already running finishes (or rolls back) as at a SIGTERM,
            // rather than being cut short with the stack half-deployed on this node.
            logger.error("the server no longer accepts this agent's key: stopping once running jobs end; enrol it again with a new join token",
                         metadata: ["message": "\(text)", "jobs.running": "\(running.count)"])
            beginStop()
        case .error(AgentSupersededError.code, let text):
            guard refusal == nil else { return }
            refusal = AgentSupersededError(message: text)
            // As above: the server still takes this connection's results, and gives what it has not
            // started to the connection that replaced it once this one says goodbye.
            logger.error("another agent with this key connected to the server: stopping once running jobs end",
                         metadata: ["message": "\(text)", "jobs.running": "\(running.count)"])
            beginStop()
        case .error(let code, let text):
            logger.warning("server reported an error", metadata: ["code": "\(code)", "message": "\(text)"])
        }
    }

    private func accept(_ spec: JobSpec) {
        switch journal.status(of: spec.id) {
        case .finished(let result):
            // Already ran: never again; the result goes back instead.
            unacknowledged[spec.id] = (result, .now)
            send(.result(result))
        case .done(let result):
            // The server acknowledged this result before and lost it (a restored backup, say): answer again, never run twice.
            logger.warning("server resent a job whose result it acknowledged", metadata: ["job.id": "\(spec.id)"])
            if let result {
                unacknowledged[spec.id] = (result, .now)
                send(.result(result))
            } else {
                send(.result(JobResult(jobId: spec.id, state: .failed, error: JobError(
                    code: "result_lost", message: "the agent ran this job before, but its result is no longer known"))))
            }
        case .held:
            send(.ack(jobId: spec.id))
        case .unknown:
            do {
                try journal.hold(spec)
            } catch {
                // A job the agent cannot keep is not run (a crash would lose it, or run it twice);
                // left unanswered, the server would send it again every few seconds forever. It
                // fails instead, and the result is resent until acknowledged like any other (kept
                // in memory only: the journal is what failed).
                logger.error("could not store a job; it fails", metadata: ["job.id": "\(spec.id)", "error": "\(error)"])
                let result = JobResult(jobId: spec.id, state: .failed, error: JobError(
                    code: "agent_storage", message: "The agent could not write the job to its journal (\(error)); free space or fix the permissions of its data directory, then deploy again."))
                unacknowledged[spec.id] = (result, .now)
                send(.result(result))
                return
            }
            send(.ack(jobId: spec.id))
            schedule(spec)
        }
    }

    // MARK: Running jobs

    private func schedule(_ spec: JobSpec) {
        guard !queued.contains(spec.id) else { return }
        queued.insert(spec.id)
        queues[spec.stackId, default: []].append(spec)
        pump()
    }

    /// The server ended a job this agent holds without it: dropped unless it already runs (a
    /// deploy is never cut short half-done; its result is then ignored by the server).
    private func cancel(_ id: String) {
        guard queued.contains(id) else { return }  // Not held (a cancel repeated by a second welcome).
        guard running[id] == nil else {
            logger.info("the server ended a job without this agent; it runs on", metadata: ["job.id": "\(id)"])
            return
        }
        for (stackId, specs) in queues {
            queues[stackId] = specs.filter { $0.id != id }
            if queues[stackId]?.isEmpty == true { queues[stackId] = nil }
        }
        queued.remove(id)
        journal.discard(id)
        logger.notice("not running a job the server ended while this agent was away (agent_lost, or its stack removed)",
                      metadata: ["job.id": "\(id)"])
    }

    private func pump() {
        while stopping == nil, released, busyStacks.count < configuration.maxConcurrentStacks,
              let stackId = queues.first(where: { !busyStacks.contains($0.key) && !$0.value.isEmpty })?.key {
            let spec = queues[stackId]!.removeFirst()
            if queues[stackId]!.isEmpty { queues[stackId] = nil }
            busyStacks.insert(stackId)
            running[spec.id] = Task { await self.execute(spec) }
        }
    }

    private func execute(_ spec: JobSpec) async {
        var metadata: Logger.Metadata = ["job.id": "\(spec.id)", "stack.id": "\(spec.stackId)", "job.kind": "\(spec.kind.rawValue)"]
        logger.info("job started", metadata: metadata)
        send(.started(jobId: spec.id))
        let logs = self.logs
        let id = spec.id
        let sink: @Sendable (String) -> Void = { line in logs.append(line, to: id) }
        let outcome: DeployOutcome
        switch spec.kind {
        case .deploy:
            outcome = await engine.deploy(StackDeployment(
                jobId: spec.id, stackId: spec.stackId, projectName: spec.stackName, compose: spec.compose, environment: spec.env,
                images: spec.images, pull: spec.pull,
                credentials: spec.credentials,
                healthTimeout: .seconds(spec.healthTimeoutSeconds)
            ), log: sink)
        case .remove:
            outcome = await engine.remove(stackId: spec.stackId, projectName: spec.stackName, compose: spec.compose,
                                          environment: spec.env, log: sink)
        }
        if Task.isCancelled {
            // Cut short by the stop: the spec stays in the journal, and the job runs again from the start.
            flushLogs()
            logger.warning("job cut short by the stop; it runs again at the next start", metadata: metadata)
            queued.remove(spec.id)
            busyStacks.remove(spec.stackId)
            running[spec.id] = nil
            return
        }
        let result = JobResult(
            jobId: spec.id,
            state: FinalJobState(rawValue: outcome.state.rawValue) ?? .failed,
            error: outcome.errorCode.map { JobError(code: $0.rawValue, message: outcome.errorMessage ?? $0.rawValue) },
            services: outcome.services
        )
        flushLogs()
        do {
            try journal.finish(result)
        } catch {
            logger.error("could not store a result; sending it anyway", metadata: ["job.id": "\(spec.id)", "error": "\(error)"])
        }
        unacknowledged[spec.id] = (result, .now)
        send(.result(result))
        metadata["state"] = "\(result.state.rawValue)"
        logger.info("job finished", metadata: metadata)
        queued.remove(spec.id)
        busyStacks.remove(spec.stackId)
        running[spec.id] = nil
        pump()
    }

    // MARK: Stopping

    private func beginStop() {
        guard stopping == nil else { return }
        stopping = Stopping(deadline: .now + configuration.stopGracePeriod)
        if !running.isEmpty {
            logger.notice("stopping: waiting for running jobs to finish", metadata: [
                "jobs": "\(running.count)", "grace": "\(configuration.stopGracePeriod)"])
        }
    }

    /// Whether the stop is done: no job runs and their results are acknowledged (or the server is
    /// away), or the grace period is over — then running jobs are cancelled first, which tears down
    /// their compose children, and given a few seconds to end.
    private func stopped() -> Bool {
        guard var stop = stopping else { return false }
        let now = ContinuousClock.now
        if running.isEmpty {
            // Results are in the journal, and sent again at the next start; waiting for their
            // acknowledgements lets the server show the job's end now (an edge agent's check-in
            // and a loaded server's commit can take seconds), within the grace period.
            if unacknowledged.isEmpty || !serverReachable { return true }
            if stop.deadline > now + .seconds(10) { stop.deadline = now + .seconds(10) }
        }
        if now >= stop.deadline {
            guard !stop.cutShort, !running.isEmpty else { return true }
            logger.warning("stopping: jobs still running after the grace period are cut short", metadata: [
                "jobs": "\(running.keys.sorted())"])
            for task in running.values { task.cancel() }
            stop.cutShort = true
            stop.deadline = now + .seconds(10)
        }
        stopping = stop
        return false
    }

    private func flushLogs() {
        for chunk in logs.drain() { send(.log(chunk)) }
    }

    /// Whether the agent holds no unfinished job and owes no result (for tests and edge check-ins).
    public var isIdle: Bool { queued.isEmpty && unacknowledged.isEmpty }

    /// Whether the server has answered this connection's hello.
    public var isWelcomed: Bool { welcomed }
}

/// The server no longer accepts this agent's key (wire error `agent_revoked`): its environment
/// was deleted, or another agent enrolled in it. Fatal: the agent must enrol again.
public struct AgentRevokedError: Error, Sendable, CustomStringConvertible {
    /// The wire error code.
    public static let code = "agent_revoked"
    /// The server's explanation.
    public var message: String
    public var description: String { "\(Self.code): \(message)" }
}

/// Another connection with this agent's key said hello after this one (wire error
/// `agent_superseded`): a copy of its data directory runs elsewhere, or the agent was started
/// twice. Fatal: two agents with one key would each run the environment's jobs.
public struct AgentSupersededError: Error, Sendable, CustomStringConvertible {
    /// The wire error code.
    public static let code = "agent_superseded"
    /// The server's explanation.
    public var message: String
    public var description: String { "\(Self.code): \(message)" }
}

/// This agent build's version.
public enum WharfAgentVersion {
    public static let current = "0.1.0"
}

/// Collects jobs' output lines between flushes, bounded per job.
///
/// A flush sends a job's lines in chunks of at most `maxChunkBytes` on the wire, far under the
/// server's `WireCodec.maxFrameBytes`: a larger frame would make the server drop the connection.
///
/// A job's chunks are numbered from `base`, the time this buffer was made in microseconds (in
/// milliseconds' steps): the server keeps one chunk per number, so a job run again after a restart
/// must not reuse the numbers of its first run, whose chunks it already has — and its chunks sort
/// after them.
final class LogBuffer: Sendable {
    private struct State {
        var lines: [String: [String]] = [:]
        var seq: [String: Int] = [:]
        /// Lines left out since the last drain, per job (over `maxPendingLines`).
        var dropped: [String: Int] = [:]
    }
    private let state = Mutex(State())
    let maxPendingLines: Int
    /// The most UTF-8 bytes kept of one line (as well as 4096 characters: one character can be many bytes).
    static let maxLineBytes = 16 << 10
    /// A chunk's lines take at most this many bytes as JSON (`WireCodec.encodedLength(of:)`), unless
    /// one line alone does (at most 6 × `maxLineBytes`).
    static let maxChunkBytes = 1 << 20
    let base: Int

    init(base: Int = Int(Date().timeIntervalSince1970 * 1000) * 1000, maxPendingLines: Int = 2000) {
        self.base = base
        self.maxPendingLines = maxPendingLines
    }

    func append(_ line: String, to jobId: String) {
        state.withLock { state in
            if state.lines[jobId, default: []].count < maxPendingLines {
                state.lines[jobId, default: []].append(Self.truncated(line))
            } else {
                state.dropped[jobId, default: 0] += 1
            }
        }
    }

    /// A line cut to 4096 characters and `maxLineBytes` bytes, at a character boundary.
    static func truncated(_ line: String) -> String {
        var kept = Substring(line.prefix(4096))
        while kept.utf8.count > maxLineBytes {
            let over = kept.utf8.count - maxLineBytes
            // Drop about as many characters as bytes over (at least one each time).
            kept = kept.dropLast(max(1, over / 4))
        }
        return String(kept)
    }

    var isEmpty: Bool { state.withLock { $0.lines.isEmpty } }

    func drain() -> [LogChunk] {
        state.withLock { state in
            var chunks: [LogChunk] = []
            // The log says where lines are missing, rather than skipping them without a word.
            for (jobId, count) in state.dropped {
                state.lines[jobId, default: []].append(
                    "... \(count) line\(count == 1 ? "" : "s") left out here: over \(maxPendingLines) lines between two sends to the server")
            }
            state.dropped.removeAll()
            for (jobId, lines) in state.lines where !lines.isEmpty {
                var start = 0
                var bytes = 0
                func emit(_ end: Int) {
                    let seq = state.seq[jobId, default: base]
                    state.seq[jobId] = seq + 1
                    chunks.append(LogChunk(jobId: jobId, seq: seq, lines: Array(lines[start..<end])))
                    start = end
                    bytes = 0
                }
                for (index, line) in lines.enumerated() {
                    let size = WireCodec.encodedLength(of: line) + 1
                    if index > start, bytes + size > Self.maxChunkBytes { emit(index) }
                    bytes += size
                }
                emit(lines.count)
            }
            state.lines.removeAll()
            return chunks
        }
    }
}
