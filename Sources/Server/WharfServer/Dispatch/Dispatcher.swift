import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WharfProtocol
import ZeroMQ

/// The server's end of the link: a CURVE ROUTER that delivers each environment's jobs to its agent.
///
/// Delivery is at-least-once over a durable job table: a job is sent while its agent is connected
/// and it is the oldest unfinished job of its stack; it is sent again after a reconnect or when
/// the agent has not acknowledged it in `resendAfter`. Agents drop repeats by job id. Identity
/// comes only from the ZAP handler's User-Id (the authenticated key), never from the agent, and is
/// checked against the key registry on every message: a connection whose key is no longer its
/// environment's (enrolled again, or the environment deleted) is answered `agent_revoked` and
/// nothing else, even though libzmq keeps the connection open.
///
/// Two connections with the same current key (an agent restarted before its old connection timed
/// out, or a copied data directory running on a second host): the last hello owns the session, and
/// the earlier connection is told `agent_superseded` (a live agent stops; a dead one never reads
/// it). The jobs the earlier connection acknowledged stay its own (`Superseded`) until it says
/// goodbye or falls silent: its results still count, and only then does the rest go to the new
/// connection. Jobs sent to it and not acknowledged go to the new connection after `resendAfter`,
/// as after any reconnect, unless it acknowledges them first (a live agent acknowledges at once).
/// So no job runs on both, and none is left behind.
public actor Dispatcher {
    /// Link timings; the defaults meet the contract's "disconnected within 15 s" (so does the
    /// longest wait for an agent asked for a longer ping interval, `askedTimeoutCap`).
    public struct Timing: Sendable {
        /// An agent unheard of for this long is disconnected; up to `askedTimeoutCap` for an agent
        /// asked for a longer ping interval (`PingPolicy.serverTimeout`).
        public var agentTimeout: Duration = .seconds(10)
        /// The longest silence allowed an agent asked for a longer ping interval.
        public var askedTimeoutCap = PingPolicy.serverTimeoutCap
        /// The pings a second the server aims at for all its agents together: past 2,000 agents,
        /// they are asked for a longer interval than the default 2 s, up to 4 s (`PingPolicy`), so
        /// past 4,000 agents there are more (2,500 a second at 10,000).
        public var pingsPerSecond = 1_000
        /// An unacknowledged job is sent again after this long.
        public var resendAfter: Duration = .seconds(5)
        /// How often timeouts are checked.
        public var tick: Duration = .milliseconds(500)
        /// The most unacknowledged jobs in flight to one agent; far below the socket's high-water mark.
        public var maxInFlight = 64

        public init() {}
    }

    struct Session {
        var routingId: [UInt8]
        /// The connection's ZAP User-Id: its environment and key (`AgentKeyRegistry.userId`).
        var userId: String
        /// When the agent's last message was read off the socket (not when it was handled).
        var lastSeen: ContinuousClock.Instant
        var held: Set<String>
        var inFlight: [String: ContinuousClock.Instant] = [:]
        var edge: Bool
        /// The ping interval this agent was last asked for (welcome or pong); nil for its own.
        var pingSeconds: Int?
        /// The environment's unfinished jobs as of the last store read; pings are answered from it.
        var openCount = 0
        /// A job was claimed but the socket would not take it: try again on the next tick.
        var unsent = false
        /// The last round filled the agent's room in flight, so heads may be left: the next result
        /// (which makes room) brings another round.
        var full = false

        /// Jobs the agent has or has in flight: not to be offered now.
        func waiting(at now: ContinuousClock.Instant, resendAfter: Duration) -> (skip: Set<String>, inFlight: Int) {
            let recent = inFlight.filter { now - $0.value < resendAfter }
            return (held.union(recent.keys), recent.count)
        }

        var pending: Int { max(0, openCount - held.count) }
    }

    /// A connection replaced by a later hello with the same key, while it may still run what it
    /// was given: those jobs go to nobody else until it says goodbye or is silent for `agentTimeout`
    /// (`PingPolicy.serverTimeout`).
    struct Superseded {
        var environmentId: String
        var userId: String
        /// Jobs it acknowledged, and not yet finished.
        var jobs: Set<String>
        var lastSeen: ContinuousClock.Instant
        /// The ping interval it was last asked for.
        var pingSeconds: Int?
    }

    private let store: any WharfStore
    private let keys: AgentKeyRegistry
    private let channel: ZMQChannel
    private let zap: ZAPHandler
    private let logger: Logger
    private var timing: Timing
    private let serverVersion: String
    private var sessions: [String: Session] = [:]
    /// The ping interval the server asks of its agents now (`askedPingSeconds`); nil for the default.
    private var pingSeconds: Int?
    /// Replaced connections by routing id; nearly always empty.
    private var superseded: [[UInt8]: Superseded] = [:]
    private var finishObservers: [UUID: @Sendable (Job) -> Void] = [:]
    /// Environments in a dispatch round now, and those asked for again meanwhile.
    private var dispatching: Set<String> = []
    private var redispatch: Set<String> = []

    /// The endpoint the ROUTER is bound to, with the real port.
    public nonisolated let endpoint: String
    /// The environments with a connected agent, for the store to claim new jobs at once (`handOver`).
    public nonisolated let connectedAgents = ConnectedAgents()
    /// What the run loop has not looked at yet: environments with new work (`notifyQueued`) and
    /// jobs the store claimed at once (`handOver`, and the next jobs of stacks in `handle`).
    private let inbox = Mutex(Inbox())
    private struct Inbox {
        var environments: Set<String> = []
        var claimed: [Claimed] = []
        var isEmpty: Bool { environments.isEmpty && claimed.isEmpty }
    }
    /// A job the store moved to `dispatched` as it queued it (`new`), or as a result ended the job
    /// before it on its stack; either is sent by the run loop (`send(claimed:)`).
    private struct Claimed {
        var environmentId: String
        var spec: JobSpec
        /// Queued in that transaction: not yet in the environment's count of open jobs.
        var new: Bool
    }
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation

    /// Binds the ROUTER on `bind` (after starting the ZAP handler, so that nothing gets in unchecked).
    public init(
        store: any WharfStore, keys: AgentKeyRegistry, context: ZMQContext, serverKeys: CurveKeyPair,
        bind: String, timing: Timing = Timing(), serverVersion: String = WharfVersion.current,
        logger: Logger
    ) throws {
        self.store = store
        self.keys = keys
        self.logger = logger
        self.timing = timing
        self.serverVersion = serverVersion
        self.zap = try ZAPHandler(context: context) { request in keys.decide(request) }
        // An agent's ping only needs its pong within seconds: pings wait up to 5 ms for other messages
        // (or each other) instead of waking the dispatcher one by one — 5,000 a second with 10,000
        // agents. Their read time, which liveness uses, is kept. (50 ms made bursts of pongs that
        // raised the jobs' p99 at 1,000 agents by a millisecond; bench/FINDINGS.md.)
        self.channel = try ZMQChannel(context: context, type: .router, batched: true,
                                      deferrable: { $0.frames.count == 2 && WireCodec.isPing($0.frames[1]) },
                                      deferLimit: .milliseconds(5), name: "wharf-router") { socket in
            try socket.makeCurveServer(secretKey: serverKeys.secretKey, zapDomain: "wharf")
            try socket.setRouterMandatory(true)
            // No ZMTP heartbeats here: libzmq 4.3.4 keeps every connection's heartbeat timers in one
            // multimap and cancels them by linear search on each message received, which at 5,000
            // agents kept its I/O thread busy enough to starve their pings (bench/FINDINGS.md). The
            // agents' pings give liveness (`agentTimeout`); TCP keepalive reaps vanished peers.
            try socket.setTCPKeepalive(idleSeconds: 30, intervalSeconds: 10, count: 3)
            try socket.setMaxMessageSize(Int64(WireCodec.maxFrameBytes))
            try socket.setBacklog(4096)
            try socket.setSendHighWaterMark(10_000)
            try socket.setReceiveHighWaterMark(100_000)
            try socket.setHandshakeInterval(milliseconds: 10_000)
            try socket.bind(bind)
        }
        self.endpoint = channel.endpoint
        (wakeups, wakeupContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Serves the link until the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.receiveLoop() }
            group.addTask { await self.tickLoop() }
            group.addTask {
                for await _ in self.wakeups {
                    let work = self.inbox.withLock { inbox in
                        defer { inbox = Inbox() }
                        return inbox
                    }
                    if !work.claimed.isEmpty { await self.send(claimed: work.claimed) }
                    if !work.environments.isEmpty { await self.dispatch(work.environments) }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Closes the socket and stops the ZAP handler.
    public func shutdown() async {
        await channel.shutdown()
        await zap.shutdown()
    }

    private func receiveLoop() async {
        await withTaskCancellationHandler {
            for await batch in channel.batches {
                await handle(batch)
            }
        } onCancel: {
            Task { await self.channel.shutdown() }
        }
    }

    private func tickLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: timing.tick)
            await tick()
        }
    }

    // MARK: Public queries and notifications

    /// Whether an environment's agent is connected now.
    public func isConnected(_ environmentId: String) -> Bool { sessions[environmentId] != nil }

    /// Changes the link timings of a running dispatcher. Tests use it to shorten a silence only
    /// once their slow setup (store commits, CURVE handshakes) is done.
    func retime(_ change: (inout Timing) -> Void) {
        change(&timing)
    }

    /// The environments whose agents are connected now.
    public func connectedEnvironments() -> Set<String> { Set(sessions.keys) }

    /// Tells the dispatcher that an environment has new work, and waits for a dispatch round of it;
    /// if a round of that environment is already running, that round goes again and this returns.
    public func jobQueued(environmentId: String) async {
        await dispatch([environmentId])
    }

    /// Tells the dispatcher that an environment has new work, without waiting (the HTTP hot path).
    ///
    /// The job is already on disk; the run loop offers it to the agent right after, together with
    /// whatever else was queued meanwhile.
    public nonisolated func notifyQueued(environmentId: String) {
        notifyQueued(environmentIds: CollectionOfOne(environmentId))
    }

    private nonisolated func notifyQueued(environmentIds: some Collection<String>) {
        guard !environmentIds.isEmpty else { return }
        post { $0.environments.formUnion(environmentIds) }
    }

    /// Adds to the run loop's inbox, and wakes the loop if the inbox was empty (else a wake-up is
    /// already pending, and the loop takes everything at once).
    private nonisolated func post(_ change: (inout Inbox) -> Void) {
        let first = inbox.withLock { inbox in
            defer { change(&inbox) }
            return inbox.isEmpty
        }
        if first { wakeupContinuation.yield() }
    }

    /// Passes on what `enqueueJob(…claimingFor: connectedAgents)` made, without waiting: a job claimed
    /// at once is sent by the run loop right after (with whatever else was claimed meanwhile); a new
    /// queued job makes its environment's next round; a joined one needs nothing.
    public nonisolated func handOver(_ enqueued: Enqueued, environmentId: String) {
        if let spec = enqueued.claimed {
            post { $0.claimed.append(Claimed(environmentId: environmentId, spec: spec, new: true)) }
        } else if enqueued.job.coalesced == 0 {
            notifyQueued(environmentId: environmentId)
        }
    }

    /// Waits until a job ends, or `timeout` passes, or the server begins to stop; returns the job
    /// as it is then.
    ///
    /// Polls the store, so it works for jobs ended by any path and needs no bookkeeping to cancel.
    /// A stop (SIGTERM) ends the wait at the next poll: a `wait=300` call then gets its 202 with the
    /// job as it stands instead of holding the server's graceful shutdown for minutes (the job
    /// itself is on disk and goes on after the restart).
    public nonisolated func waitForFinish(jobId: String, timeout: Duration) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await store.job(id: jobId).job
            if job.state.isFinal || ContinuousClock.now >= deadline || Task.isShuttingDownGracefully { return job }
            try await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }

    // MARK: Incoming

    /// Handles everything one wake-up of the socket's thread read: session bookkeeping and pings in
    /// memory, every store change in one transaction, then the replies; the environments whose work
    /// changed go to the run loop for one dispatch round.
    private func handle(_ batch: ZMQBatch) async {
        if let oldest = batch.receivedAt.first, ContinuousClock.now - oldest > .seconds(2),
           ContinuousClock.now - lastLagWarning > .seconds(10) {
            lastLagWarning = .now
            logger.warning("the link is behind: agents' messages wait to be handled",
                           metadata: ["lag": "\(ContinuousClock.now - oldest)", "messages": "\(batch.messages.count)"])
        }
        handledSinceTrim += batch.messages.count
        var work = AgentBatch()
        // Which connections' keys are still current, under one lock for the whole batch.
        let current = keys.environments(forUserIds: Set(batch.messages.compactMap(\.userId)))
        var resultRoutes: [[UInt8]?] = []  // Where each of `work.results` came from.
        var welcomes: [(environmentId: String, routingId: [UInt8])] = []
        var touched: Set<String> = []
        for (message, receivedAt) in zip(batch.messages, batch.receivedAt) {
            guard message.frames.count == 2, let userId = message.userId, !userId.isEmpty else {
                logger.warning("dropped a frame set without an authenticated peer", metadata: ["frames": "\(message.frames.count)"])
                continue
            }
            let routingId = message.frames[0]
            guard let environmentId = current[userId] else {
                revoked(userId: userId, routingId: routingId)
                continue
            }
            let decoded: AgentMessage
            do {
                decoded = try WireCodec.decodeAgentMessage(message.frames[1])
            } catch {
                logger.warning("dropped a malformed message", metadata: ["env.id": "\(environmentId)", "error": "\(error)"])
                send(.error(code: error.code, message: error.message), to: routingId)
                continue
            }
            if superseded[routingId]?.userId == userId {
                // A replaced connection: its results, logs and acks count; nothing else it says does.
                if handleSuperseded(decoded, from: routingId, environmentId: environmentId, receivedAt: receivedAt,
                                    work: &work, resultRoutes: &resultRoutes) {
                    touched.insert(environmentId)
                }
                continue
            }
            if case .hello(let hello) = decoded {
                let previous = sessions[environmentId]
                // Until its welcome, what the fleet is asked now: an agent that reconnects keeps pinging
                // at the interval it was asked for before.
                var session = Session(routingId: routingId, userId: userId, lastSeen: receivedAt, held: Set(hello.holding),
                                      edge: hello.edge, pingSeconds: hello.edge ? nil : pingSeconds,
                                      openCount: previous?.openCount ?? 0)
                if let previous, previous.routingId != routingId, previous.userId == userId {
                    supersede(previous, environmentId: environmentId, by: hello, at: receivedAt)
                    // Sent there and not acknowledged: the job may never have arrived (a connection
                    // that went silent), so it goes again after `resendAfter`, here.
                    session.inFlight = previous.inFlight.filter { !session.held.contains($0.key) }
                }
                sessions[environmentId] = session
                // An edge agent is only here for a check-in: its jobs wait for rounds.
                if hello.edge { connectedAgents.remove(environmentId) } else { connectedAgents.insert(environmentId) }
                if previous == nil {
                    logger.info("agent connected", metadata: ["env.id": "\(environmentId)", "agent.hostname": "\(hello.hostname)",
                                                              "agent.version": "\(hello.agentVersion)", "holding": "\(hello.holding.count)"])
                }
                work.hellos.append(.init(environmentId: environmentId, info: AgentInfo(
                    hostname: hello.hostname, version: hello.agentVersion,
                    dockerVersion: hello.dockerVersion, composeVersion: hello.composeVersion), holding: hello.holding))
                for result in hello.results {
                    work.results.append(.init(result: result, environmentId: environmentId))
                    resultRoutes.append(routingId)
                }
                work.countOpen.insert(environmentId)
                welcomes.append((environmentId, routingId))
                touched.insert(environmentId)
                continue
            }
            // In place (`withSession`), as for every message.
            let known = sessions.index(forKey: environmentId).map { index in
                withSession(at: index) { session in
                    guard session.routingId == routingId else { return false }
                    session.lastSeen = receivedAt
                    return true
                }
            } ?? false
            if !known {
                // A connection the server does not know (a restart on either side): ask who it is.
                send(.helloRequired, to: routingId)
            }
            switch decoded {
            case .hello:
                break
            case .ack(let jobId):
                // A job sent in this session was written `dispatched` before it went out (a round's
                // claim, or the claim as it was queued): its ack would change nothing on disk. Only
                // an ack of anything else goes to the store (which marks a `queued` job dispatched).
                let sentInSession = sessions[environmentId]?.inFlight.removeValue(forKey: jobId) != nil
                sessions[environmentId]?.held.insert(jobId)
                if !sentInSession { work.acks.append(.init(jobId: jobId, environmentId: environmentId)) }
            case .started, .log, .result:
                collectReport(decoded, from: routingId, environmentId: environmentId, work: &work, resultRoutes: &resultRoutes)
            case .bye:
                if sessions[environmentId]?.routingId == routingId { drop(environmentId, reason: "bye") }
            case .ping:
                // Only the connection's own session takes what its pong asks: a stray connection's
                // would change the timeout of the agent that has the environment now.
                // In place (`withSession`): pings are most of what a large idle fleet sends.
                if let index = sessions.index(forKey: environmentId),
                   let edge = withSession(at: index, { $0.routingId == routingId ? $0.edge : nil }) {
                    let asked = askedPingSeconds(edge: edge)
                    let pending = withSession(at: index) { session in
                        session.pingSeconds = asked
                        return session.pending
                    }
                    send(.pong(pending: pending, pingSeconds: asked), to: routingId)
                } else {
                    send(.pong(pending: sessions[environmentId]?.pending ?? 0, pingSeconds: askedPingSeconds(edge: false)), to: routingId)
                }
            }
        }
        guard !work.isEmpty else { return }
        var endedHeld: [String: [String]] = [:]
        do {
            // A stack's next job, if queued, is claimed as the result before it is stored.
            let outcome = try await store.applyAgentBatch(work, at: Date(), claimingFor: connectedAgents)
            touched.formUnion(absorb(outcome, of: work, routes: resultRoutes))
            endedHeld = outcome.endedHeld
        } catch {
            // Nothing of the batch is stored; results are not acknowledged, so the agents send them again.
            logger.error("could not store agents' messages", metadata: ["messages": "\(batch.messages.count)", "error": "\(error)"])
        }
        for welcome in welcomes {
            // Before the welcome, which an agent waits for to start the jobs its journal held: those
            // the server ended without it (agent_lost) are not run after all.
            for jobId in endedHeld[welcome.environmentId] ?? [] where sessions[welcome.environmentId]?.routingId == welcome.routingId {
                sessions[welcome.environmentId]?.held.remove(jobId)
                logger.notice("an agent holds a job that ended without it; told not to run it",
                              metadata: ["env.id": "\(welcome.environmentId)", "job.id": "\(jobId)"])
                send(.cancel(jobId: jobId), to: welcome.routingId)
            }
            let current = sessions[welcome.environmentId]?.routingId == welcome.routingId
            let asked = askedPingSeconds(edge: current && sessions[welcome.environmentId]?.edge == true)
            if current { sessions[welcome.environmentId]?.pingSeconds = asked }
            send(.welcome(Welcome(environmentId: welcome.environmentId, serverVersion: serverVersion,
                                  pending: sessions[welcome.environmentId]?.pending ?? 0, pingSeconds: asked)),
                 to: welcome.routingId)
        }
        // The round goes to the run loop: the next batch (results waiting to be stored) does not wait for it.
        notifyQueued(environmentIds: touched)
    }

    /// Another connection with the same key said hello: the earlier one keeps what it acknowledged
    /// (`Superseded`) and is told to stop. A live copy of the agent stops; a dead connection
    /// (an agent restarted, or reconnected, before the server noticed) never reads it.
    private func supersede(_ previous: Session, environmentId: String, by hello: AgentHello, at receivedAt: ContinuousClock.Instant) {
        superseded[previous.routingId] = Superseded(
            environmentId: environmentId, userId: previous.userId,
            jobs: previous.held.subtracting(hello.holding), lastSeen: previous.lastSeen, pingSeconds: previous.pingSeconds)
        send(Self.supersededError, to: previous.routingId)
        if receivedAt - previous.lastSeen < .seconds(5), ContinuousClock.now - lastSharedKeyWarning > .seconds(60) {
            lastSharedKeyWarning = .now
            logger.warning("two live connections use one environment's agent key; the earlier one is told to stop. Is a copy of an agent's data directory running on another host?",
                           metadata: ["env.id": "\(environmentId)", "agent.hostname": "\(hello.hostname)"])
        }
    }

    static let supersededError = ServerMessage.error(
        code: "agent_superseded",
        message: "Another agent with this key connected to the server after this one, and now has its environment. A data directory must not run on two hosts: stop one of them.")

    /// A message from a replaced connection (`superseded`). Its acks keep the job its own, its
    /// results and logs are stored as any agent's, and its goodbye gives what it did not finish to
    /// the connection that replaced it; a hello or ping is answered `agent_superseded` again.
    /// Returns whether the environment needs a dispatch round (its jobs were given back).
    private func handleSuperseded(_ message: AgentMessage, from routingId: [UInt8], environmentId: String,
                                  receivedAt: ContinuousClock.Instant, work: inout AgentBatch, resultRoutes: inout [[UInt8]?]) -> Bool {
        superseded[routingId]?.lastSeen = receivedAt
        switch message {
        case .hello, .ping:
            send(Self.supersededError, to: routingId)
        case .ack(let jobId):
            // Its own from now on. Sent to it before it was replaced (inherited in flight) or
            // acknowledged before, the job is `dispatched` on disk already: the store hears of
            // any other ack only (as in `handle`).
            let known = superseded[routingId]?.jobs.contains(jobId) ?? false
            let sentBefore = sessions[environmentId]?.inFlight.removeValue(forKey: jobId) != nil
            superseded[routingId]?.jobs.insert(jobId)
            if !known && !sentBefore { work.acks.append(.init(jobId: jobId, environmentId: environmentId)) }
        case .started, .log, .result:
            collectReport(message, from: routingId, environmentId: environmentId, work: &work, resultRoutes: &resultRoutes)
        case .bye:
            return release(routingId, reason: "it said goodbye")
        }
        return false
    }

    /// Adds what a believed connection reports of its jobs (started, log lines, a result) to the
    /// batch's store work; a result remembers its connection, which gets the acknowledgement.
    private func collectReport(_ message: AgentMessage, from routingId: [UInt8], environmentId: String,
                               work: inout AgentBatch, resultRoutes: inout [[UInt8]?]) {
        switch message {
        case .started(let jobId):
            work.started.append(.init(jobId: jobId, environmentId: environmentId))
        case .log(let chunk):
            work.logs.append(.init(chunk: chunk, environmentId: environmentId))
        case .result(let result):
            work.results.append(.init(result: result, environmentId: environmentId))
            resultRoutes.append(routingId)
        case .hello, .ack, .bye, .ping:
            break
        }
    }

    /// Gives a replaced connection's unfinished jobs to whoever has its environment now.
    private func release(_ routingId: [UInt8], reason: String) -> Bool {
        guard let entry = superseded.removeValue(forKey: routingId) else { return false }
        if !entry.jobs.isEmpty {
            logger.info("a replaced agent connection ended; its unfinished jobs go to the connection that replaced it",
                        metadata: ["env.id": "\(entry.environmentId)", "jobs": "\(entry.jobs.count)", "reason": "\(reason)"])
        }
        return !entry.jobs.isEmpty
    }

    /// Jobs of an environment that replaced connections still have: offered to nobody else.
    private func reserved(_ environmentId: String) -> Set<String> {
        guard !superseded.isEmpty else { return [] }
        var jobs: Set<String> = []
        for entry in superseded.values where entry.environmentId == environmentId { jobs.formUnion(entry.jobs) }
        return jobs
    }

    /// Takes in what the store made of a batch's results: acknowledges each stored one to the
    /// connection it came from (`routes`, nil for a result the server made itself), tells the
    /// finish observers, and hands the stacks' next jobs to the run loop. Returns the environments
    /// that need a dispatch round.
    private func absorb(_ outcome: AgentBatchOutcome, of work: AgentBatch, routes: [[UInt8]?]) -> Set<String> {
        var touched: Set<String> = []
        for (index, stored) in outcome.results.enumerated() {
            let result = work.results[index].result
            let environmentId = work.results[index].environmentId
            switch stored {
            case .stored(let job, let ended):
                sessions[environmentId]?.held.remove(result.jobId)
                sessions[environmentId]?.inFlight[result.jobId] = nil
                if !superseded.isEmpty { forgetSuperseded(jobId: result.jobId, environmentId: environmentId) }
                if let route = routes[index] { send(.resultAck(jobId: result.jobId), to: route) }
                // A round only when something may go now: the stack's next job (`nextJobs`, below),
                // heads left by a full round, or an edge agent's count of what is pending.
                if let session = sessions[environmentId] {
                    if ended { sessions[environmentId]?.openCount = max(0, session.openCount - 1) }
                    if session.full || session.edge { touched.insert(environmentId) }
                }
                if ended {
                    logger.info("job finished", metadata: ["job.id": "\(job.id)", "stack.id": "\(job.stackId)",
                                                           "env.id": "\(environmentId)", "state": "\(job.state.rawValue)"])
                    for observer in finishObservers.values { observer(job) }
                }
            case .unknown:
                if !superseded.isEmpty { forgetSuperseded(jobId: result.jobId, environmentId: environmentId) }
                // Not a job of this environment: acknowledge so the agent stops resending, and say why.
                logger.warning("result for an unknown job", metadata: ["env.id": "\(environmentId)", "job.id": "\(result.jobId)"])
                if let route = routes[index] { send(.resultAck(jobId: result.jobId), to: route) }
            case .failed(let message):
                // Not acknowledged: the agent keeps the result and sends it again.
                logger.error("could not store a result", metadata: ["job.id": "\(result.jobId)", "error": "\(message)"])
            }
        }
        for (environmentId, count) in outcome.openCounts { sessions[environmentId]?.openCount = count }
        touched.formUnion(outcome.nextJobs)
        if !outcome.claimed.isEmpty {
            post { inbox in
                inbox.claimed.append(contentsOf: outcome.claimed.map { Claimed(environmentId: $0.environmentId, spec: $0.spec, new: false) })
            }
        }
        return touched
    }

    private func forgetSuperseded(jobId: String, environmentId: String) {
        for (routingId, entry) in superseded where entry.environmentId == environmentId && entry.jobs.contains(jobId) {
            superseded[routingId]?.jobs.remove(jobId)
        }
    }

    /// A job frame is sent only if the agent's socket can take it (`ZMQ_MAXMSGSIZE` is
    /// `WireCodec.maxFrameBytes`; CURVE adds a few dozen bytes to each frame): a larger one would
    /// drop the agent's connection, and after its reconnect the job would go again, forever.
    static let maxJobFrameBytes = WireCodec.maxFrameBytes - 4096

    /// Ends jobs too large to send `failed` (`job_too_large`), through the path an agent's result takes.
    private func failTooLarge(_ jobs: [(environmentId: String, jobId: String, bytes: Int)]) async {
        var work = AgentBatch()
        for job in jobs {
            sessions[job.environmentId]?.inFlight[job.jobId] = nil
            logger.error("a job is too large to send to its agent; it fails",
                         metadata: ["job.id": "\(job.jobId)", "env.id": "\(job.environmentId)", "bytes": "\(job.bytes)"])
            work.results.append(.init(result: JobResult(jobId: job.jobId, state: .failed, error: JobError(
                code: "job_too_large",
                message: "The job is \(job.bytes) bytes on the link, over the \(Self.maxJobFrameBytes) an agent accepts: make the stack's env or compose file smaller.")),
                environmentId: job.environmentId))
        }
        do {
            let outcome = try await store.applyAgentBatch(work, at: Date(), claimingFor: connectedAgents)
            notifyQueued(environmentIds: absorb(outcome, of: work, routes: Array(repeating: nil, count: work.results.count)))
        } catch {
            // Still `dispatched`: the tick's next round finds it again.
            logger.error("could not fail a job too large to send", metadata: ["jobs": "\(jobs.count)", "error": "\(error)"])
            for job in jobs { sessions[job.environmentId]?.unsent = true }
        }
    }

    /// Calls `observer` for every job that ends from now on; returns a token for `removeObserver`.
    public func addFinishObserver(_ observer: @escaping @Sendable (Job) -> Void) -> UUID {
        let id = UUID()
        finishObservers[id] = observer
        return id
    }

    /// Stops calling an observer.
    public func removeObserver(_ id: UUID) { finishObservers[id] = nil }

    // MARK: Outgoing

    private func send(_ message: ServerMessage, to routingId: [UInt8]) {
        channel.post([routingId, WireCodec.encode(message)])
    }

    /// Sends the environments' due jobs. An environment is in one round at a time; one asked for
    /// while in a round goes again when that round ends.
    private func dispatch(_ environmentIds: some Sequence<String>) async {
        var mine: Set<String> = []
        for environmentId in environmentIds where sessions[environmentId] != nil {
            if dispatching.contains(environmentId) {
                redispatch.insert(environmentId)
            } else {
                mine.insert(environmentId)
            }
        }
        guard !mine.isEmpty else { return }
        dispatching.formUnion(mine)
        var round = mine
        while !round.isEmpty {
            redispatch.subtract(round)
            await dispatchRound(round)
            round = redispatch.intersection(mine)
        }
        dispatching.subtract(mine)
    }

    private func dispatchRound(_ environmentIds: Set<String>) async {
        let now = ContinuousClock.now
        var requests: [DispatchRequest] = []
        for environmentId in environmentIds.sorted() {
            guard var session = sessions[environmentId] else { continue }
            let waiting = session.waiting(at: now, resendAfter: timing.resendAfter)
            requests.append(DispatchRequest(environmentId: environmentId, skip: waiting.skip.union(reserved(environmentId)),
                                            capacity: max(0, timing.maxInFlight - waiting.inFlight)))
            session.unsent = false
            sessions[environmentId] = session
        }
        let claims: [DispatchClaim]
        do {
            claims = try await store.claimDispatch(requests)
        } catch is CancellationError {
            // Shutting down: what was queued stays on disk and goes out when the server next runs.
            for request in requests { sessions[request.environmentId]?.unsent = true }
            return
        } catch {
            logger.error("could not read queued jobs", metadata: ["environments": "\(requests.count)", "error": "\(error)"])
            for request in requests { sessions[request.environmentId]?.unsent = true }
            return
        }
        // Re-read the sessions after the await: an agent may have gone, reconnected (new routing id)
        // or acknowledged meanwhile.
        var messages: [[[UInt8]]] = []
        var sent: [(environmentId: String, jobId: String, routingId: [UInt8])] = []
        var tooLarge: [(environmentId: String, jobId: String, bytes: Int)] = []
        let capacities = Dictionary(requests.map { ($0.environmentId, $0.capacity) }, uniquingKeysWith: { $1 })
        for claim in claims {
            guard let session = sessions[claim.environmentId] else { continue }
            sessions[claim.environmentId]?.openCount = claim.openCount
            sessions[claim.environmentId]?.full = claim.jobs.count >= capacities[claim.environmentId, default: 0]
            // Not one the agent holds, nor one another send (a hand-over) put in flight while this
            // round waited for the store: the round would send it twice (the agent drops repeats).
            let reserved = reserved(claim.environmentId)
            for spec in claim.jobs where !session.held.contains(spec.id) && !(session.inFlight[spec.id].map { $0 > now } ?? false)
                && !reserved.contains(spec.id) {
                // In flight from now, so that jobs handed over meanwhile (`send(claimed:)`) skip it.
                sessions[claim.environmentId]?.inFlight[spec.id] = now
                let frame = WireCodec.encode(.job(spec))
                guard frame.count <= Self.maxJobFrameBytes else {
                    tooLarge.append((claim.environmentId, spec.id, frame.count))
                    continue
                }
                messages.append([session.routingId, frame])
                sent.append((claim.environmentId, spec.id, session.routingId))
            }
        }
        let outcomes = await channel.send(batch: messages)
        record(outcomes, of: sent, at: ContinuousClock.now)
        if !tooLarge.isEmpty { await failTooLarge(tooLarge) }
    }

    /// Sends jobs the store claimed when it queued them (`handOver`) or stored the result before
    /// them (`handle`), as a round would have: each to its agent if connected, with room in flight,
    /// and not holding or being sent it already (a round may have sent it meanwhile, as a
    /// `dispatched` head). One that cannot go now stays `dispatched` on disk, and a later round of
    /// its environment sends it (the tick's, or the one after its agent's next hello).
    private func send(claimed: [Claimed]) async {
        let now = ContinuousClock.now
        var messages: [[[UInt8]]] = []
        var sent: [(environmentId: String, jobId: String, routingId: [UInt8])] = []
        var tooLarge: [(environmentId: String, jobId: String, bytes: Int)] = []
        for claim in claimed {
            let (environmentId, spec) = (claim.environmentId, claim.spec)
            guard var session = sessions[environmentId] else { continue }
            if claim.new { session.openCount += 1 }
            let waiting = session.waiting(at: now, resendAfter: timing.resendAfter)
            if waiting.skip.contains(spec.id) || reserved(environmentId).contains(spec.id) {
                // Already held or sent (by this connection, or one it replaced).
            } else if waiting.inFlight >= timing.maxInFlight {
                session.unsent = true
            } else {
                // In flight from now, so that a round running while this send waits does not send it too.
                session.inFlight[spec.id] = now
                let frame = WireCodec.encode(.job(spec))
                if frame.count <= Self.maxJobFrameBytes {
                    messages.append([session.routingId, frame])
                    sent.append((environmentId, spec.id, session.routingId))
                } else {
                    tooLarge.append((environmentId, spec.id, frame.count))
                }
            }
            sessions[environmentId] = session
        }
        if !messages.isEmpty {
            let outcomes = await channel.send(batch: messages)
            record(outcomes, of: sent, at: ContinuousClock.now)
        }
        if !tooLarge.isEmpty { await failTooLarge(tooLarge) }
    }

    /// Notes what became of jobs handed to the socket.
    private func record(_ outcomes: [Result<Bool, ZMQError>], of sent: [(environmentId: String, jobId: String, routingId: [UInt8])],
                        at sentAt: ContinuousClock.Instant) {
        for (target, outcome) in zip(sent, outcomes) {
            guard sessions[target.environmentId]?.routingId == target.routingId else { continue }
            switch outcome {
            case .success(true):
                sessions[target.environmentId]?.inFlight[target.jobId] = sentAt
            case .success(false):
                // The pipe is full: the job stays claimed and goes on the next tick.
                sessions[target.environmentId]?.inFlight[target.jobId] = nil
                sessions[target.environmentId]?.unsent = true
            case .failure(let error) where error.hostUnreachable:
                drop(target.environmentId, reason: "unreachable; its jobs stay queued")
            case .failure(let error):
                logger.error("could not send a job", metadata: ["job.id": "\(target.jobId)", "error": "\(error)"])
                sessions[target.environmentId]?.inFlight[target.jobId] = nil
                sessions[target.environmentId]?.unsent = true
            }
        }
    }

    /// A message from a connection whose key is no longer its environment's: not believed. The
    /// agent is told (it stops), and a session it still owned is dropped.
    private func revoked(userId: String, routingId: [UInt8]) {
        send(Self.revokedError, to: routingId)
        // The User-Id starts with the environment id (`AgentKeyRegistry.userId`): no scan of every session.
        let environmentId = String(userId.prefix { $0 != " " })
        if let session = sessions[environmentId], session.userId == userId, session.routingId == routingId {
            drop(environmentId, reason: "its key is no longer enrolled")
        }
        if ContinuousClock.now - lastRevokedWarning > .seconds(10) {
            lastRevokedWarning = .now
            logger.warning("refused a message from an agent whose key is no longer enrolled",
                           metadata: ["env.id": "\(userId.split(separator: " ").first ?? "")"])
        }
    }

    private func drop(_ environmentId: String, reason: String) {
        connectedAgents.remove(environmentId)
        guard sessions.removeValue(forKey: environmentId) != nil else { return }
        logger.info("agent disconnected", metadata: ["env.id": "\(environmentId)", "reason": "\(reason)"])
    }

    private var lastTouch = ContinuousClock.now
    private var lastLagWarning = ContinuousClock.now - .seconds(60)
    private var lastRevokedWarning = ContinuousClock.now - .seconds(60)
    private var lastSharedKeyWarning = ContinuousClock.now - .seconds(120)
    /// Agent messages handled since the heap was last trimmed (`MemoryTrim`), and when that was.
    private var handledSinceTrim = 0
    private var lastTrim = ContinuousClock.now

    /// Reads or changes the session at `index` in place, through the dictionary's `_modify`: copying
    /// a session out (a subscript's getter, a `for` over the dictionary) retains and releases each of
    /// its collections. The caller must not hold the dictionary itself meanwhile (`sessions.indices`
    /// does), or the access copies all of it.
    private func withSession<T>(at index: [String: Session].Index, _ body: (inout Session) -> T) -> T {
        body(&sessions.values[index])
    }

    /// The ping interval to ask of an agent now (`PingPolicy`): longer than the default once the
    /// connected agents would ping more than `pingsPerSecond` times a second together. An edge agent
    /// pings on its own schedule during its check-ins.
    private func askedPingSeconds(edge: Bool) -> Int? {
        pingSeconds = PingPolicy.seconds(agents: sessions.count, perSecond: timing.pingsPerSecond, current: pingSeconds)
        return edge ? nil : pingSeconds
    }

    /// How long an agent asked for `asked` seconds (nil: its own) may be silent (`PingPolicy.serverTimeout`).
    private func silenceAllowed(asked: Int?) -> Duration {
        PingPolicy.serverTimeout(timing.agentTimeout, asked: asked, cap: timing.askedTimeoutCap)
    }

    private func tick() async {
        var now = ContinuousClock.now
        // After a busy spell (agents connecting, a round of jobs), give freed heap pages back; at
        // most every 10 s, and off the dispatcher (a trim walks the whole heap).
        if handledSinceTrim >= 5_000, now - lastTrim >= .seconds(10) {
            handledSinceTrim = 0
            lastTrim = now
            Task.detached(priority: .background) { MemoryTrim.run() }
        }
        // lastSeenAt on disk follows the pings, a few seconds behind, in one write for all agents.
        if now - lastTouch >= .seconds(5) {
            lastTouch = now
            var heard: [String] = []
            var index = sessions.startIndex
            while index != sessions.endIndex {
                if withSession(at: index, { now - $0.lastSeen < .seconds(5) }) { heard.append(sessions.keys[index]) }
                sessions.formIndex(after: &index)
            }
            do {
                try await store.touchEnvironments(ids: heard, at: Date())
            } catch {
                logger.warning("could not record agents' last-seen times", metadata: ["error": "\(error)"])
            }
            // The write may have taken a while: silences are measured to now.
            now = ContinuousClock.now
        }
        var due: [String] = []
        for (routingId, entry) in superseded where now - entry.lastSeen > silenceAllowed(asked: entry.pingSeconds) {
            if release(routingId, reason: "silent for \((now - entry.lastSeen).formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))") {
                due.append(entry.environmentId)
            }
        }
        // Every session, every tick: read in place (`withSession`), not copied out one by one, which
        // retained and released each session's collections (a tenth of an idle 10,000-agent server's
        // CPU); the silent ones are dropped after the walk.
        var silent: [(environmentId: String, silence: Duration)] = []
        let resendAfter = timing.resendAfter
        var index = sessions.startIndex
        while index != sessions.endIndex {
            let (silence, isDue) = withSession(at: index) { (session: inout Session) -> (Duration?, Bool) in
                let silence = now - session.lastSeen
                if silence > silenceAllowed(asked: session.pingSeconds) { return (silence, false) }
                return (nil, session.unsent || session.inFlight.values.contains { now - $0 >= resendAfter })
            }
            if let silence {
                silent.append((sessions.keys[index], silence))
            } else if isDue {
                due.append(sessions.keys[index])
            }
            sessions.formIndex(after: &index)
        }
        for (environmentId, silence) in silent {
            drop(environmentId, reason: "silent for \(silence.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
        }
        await dispatch(due)
    }

    /// Forgets an environment's connection (its keys were removed).
    public func forget(environmentId: String) {
        // Told at once, not at its next message: until then it could start a job it holds.
        if let session = sessions[environmentId] { send(Self.revokedError, to: session.routingId) }
        for (routingId, entry) in superseded where entry.environmentId == environmentId { send(Self.revokedError, to: routingId) }
        drop(environmentId, reason: "its agent key was removed")
        superseded = superseded.filter { $0.value.environmentId != environmentId }
    }

    static let revokedError = ServerMessage.error(
        code: "agent_revoked",
        message: "This agent's key is no longer enrolled: its environment was deleted or another agent enrolled in it. Enrol again with a new join token.")

    /// Drops an environment's session if its connection's key is no longer the environment's
    /// (another agent enrolled): it is told `agent_revoked` at once (and again at each message it
    /// sends), so that it starts none of the jobs it holds, and nothing else goes to it.
    public func revalidate(environmentId: String) {
        // Replaced connections with the old key: a revoked key's jobs go to the new agent (docs/production.md).
        func isRevoked(_ userId: String) -> Bool { keys.environment(forUserId: userId) != environmentId }
        for (routingId, entry) in superseded where entry.environmentId == environmentId && isRevoked(entry.userId) {
            send(Self.revokedError, to: routingId)
        }
        superseded = superseded.filter { $0.value.environmentId != environmentId || !isRevoked($0.value.userId) }
        guard let session = sessions[environmentId], isRevoked(session.userId) else { return }
        send(Self.revokedError, to: session.routingId)
        drop(environmentId, reason: "another agent enrolled in its environment")
    }
}

/// This build's version.
public enum WharfVersion {
    /// The version string agents and servers report.
    public static let current = "0.1.0"
}
