import Foundation
import Logging
import WharfProtocol
import ZeroMQ

/// The server's end of the link: a CURVE ROUTER that delivers each environment's jobs to its agent.
///
/// Delivery is at-least-once over a durable job table: a job is sent while its agent is connected
/// and it is the oldest unfinished job of its stack; it is sent again after a reconnect or when
/// the agent has not acknowledged it in `resendAfter`. Agents drop repeats by job id. Identity
/// comes only from the ZAP handler's User-Id (the authenticated key), never from the agent.
public actor Dispatcher {
    /// Link timings; the defaults meet the contract's "disconnected within 15 s".
    public struct Timing: Sendable {
        /// An agent unheard of for this long is disconnected.
        public var agentTimeout: Duration = .seconds(10)
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
        var lastSeen: ContinuousClock.Instant
        var held: Set<String>
        var inFlight: [String: ContinuousClock.Instant] = [:]
        var edge: Bool
        var dispatching = false
        var dirty = false
    }

    private let store: any WharfStore
    private let keys: AgentKeyRegistry
    private let channel: ZMQChannel
    private let zap: ZAPHandler
    private let logger: Logger
    private let timing: Timing
    private let serverVersion: String
    private let credentials: @Sendable ([String]) async -> [RegistryAuth]
    private var sessions: [String: Session] = [:]
    private var finishObservers: [UUID: @Sendable (Job) -> Void] = [:]

    /// The endpoint the ROUTER is bound to, with the real port.
    public nonisolated let endpoint: String
    private let wakeups: AsyncStream<String>
    private let wakeupContinuation: AsyncStream<String>.Continuation

    /// Binds the ROUTER on `bind` (after starting the ZAP handler, so that nothing gets in unchecked).
    public init(
        store: any WharfStore, keys: AgentKeyRegistry, context: ZMQContext, serverKeys: CurveKeyPair,
        bind: String, timing: Timing = Timing(), serverVersion: String = WharfVersion.current,
        logger: Logger,
        credentials: @escaping @Sendable ([String]) async -> [RegistryAuth] = { _ in [] }
    ) throws {
        self.store = store
        self.keys = keys
        self.logger = logger
        self.timing = timing
        self.serverVersion = serverVersion
        self.credentials = credentials
        self.zap = try ZAPHandler(context: context) { request in keys.decide(request) }
        self.channel = try ZMQChannel(context: context, type: .router, name: "wharf-router") { socket in
            try socket.makeCurveServer(secretKey: serverKeys.secretKey, zapDomain: "wharf")
            try socket.setRouterMandatory(true)
            try socket.setHeartbeat(intervalMs: 2000, timeoutMs: 6000, ttlMs: 6000)
            try socket.setMaxMessageSize(Int64(WireCodec.maxFrameBytes))
            try socket.setBacklog(4096)
            try socket.setSendHighWaterMark(10_000)
            try socket.setReceiveHighWaterMark(100_000)
            try socket.setHandshakeInterval(milliseconds: 10_000)
            try socket.bind(bind)
        }
        self.endpoint = channel.endpoint
        (wakeups, wakeupContinuation) = AsyncStream.makeStream(of: String.self)
    }

    /// Serves the link until the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.receiveLoop() }
            group.addTask { await self.tickLoop() }
            group.addTask {
                for await environmentId in self.wakeups { await self.dispatch(environmentId) }
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
            for await message in channel.incoming {
                await handle(message)
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

    /// The environments whose agents are connected now.
    public func connectedEnvironments() -> Set<String> { Set(sessions.keys) }

    /// Tells the dispatcher that an environment has new work, and waits until it has been offered.
    public func jobQueued(environmentId: String) async {
        await dispatch(environmentId)
    }

    /// Tells the dispatcher that an environment has new work, without waiting (the HTTP hot path).
    ///
    /// The job is already on disk; the run loop offers it to the agent right after.
    public nonisolated func notifyQueued(environmentId: String) {
        wakeupContinuation.yield(environmentId)
    }

    /// Waits until a job ends, or `timeout` passes; returns the job as it is then.
    ///
    /// Polls the store, so it works for jobs ended by any path and needs no bookkeeping to cancel.
    public nonisolated func waitForFinish(jobId: String, timeout: Duration) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await store.job(id: jobId).job
            if job.state.isFinal || ContinuousClock.now >= deadline { return job }
            try await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }

    // MARK: Incoming

    private func handle(_ message: ZMQMessage) async {
        guard message.frames.count == 2, let environmentId = message.userId, !environmentId.isEmpty else {
            logger.warning("dropped a frame set without an authenticated peer", metadata: ["frames": "\(message.frames.count)"])
            return
        }
        let routingId = message.frames[0]
        let decoded: AgentMessage
        do {
            decoded = try WireCodec.decodeAgentMessage(message.frames[1])
        } catch {
            logger.warning("dropped a malformed message", metadata: ["env.id": "\(environmentId)", "error": "\(error)"])
            send(.error(code: error.code, message: error.message), to: routingId)
            return
        }
        let now = ContinuousClock.now
        if case .hello(let hello) = decoded {
            await handleHello(hello, environmentId: environmentId, routingId: routingId, now: now)
            return
        }
        if var session = sessions[environmentId], session.routingId == routingId {
            session.lastSeen = now
            sessions[environmentId] = session
        } else {
            // A connection the server does not know (a restart on either side): ask who it is.
            send(.helloRequired, to: routingId)
        }
        switch decoded {
        case .hello:
            break
        case .ack(let jobId):
            sessions[environmentId]?.inFlight[jobId] = nil
            sessions[environmentId]?.held.insert(jobId)
            do {
                try await store.markDispatched(jobId: jobId, environmentId: environmentId)
            } catch {
                logger.error("could not record an acknowledgement", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            }
        case .started(let jobId):
            _ = try? await store.markRunning(jobId: jobId, environmentId: environmentId)
        case .log(let chunk):
            try? await store.appendLog(chunk, environmentId: environmentId)
        case .result(let result):
            await handleResult(result, environmentId: environmentId, routingId: routingId)
            await dispatch(environmentId)
        case .bye:
            if sessions[environmentId]?.routingId == routingId { drop(environmentId) }
        case .ping:
            let pending = await pendingCount(environmentId)
            send(.pong(pending: pending), to: routingId)
        }
    }

    private func handleHello(_ hello: AgentHello, environmentId: String, routingId: [UInt8], now: ContinuousClock.Instant) async {
        let wasConnected = sessions[environmentId] != nil
        sessions[environmentId] = Session(routingId: routingId, lastSeen: now, held: Set(hello.holding), edge: hello.edge)
        let info = AgentInfo(hostname: hello.hostname, version: hello.agentVersion,
                             dockerVersion: hello.dockerVersion, composeVersion: hello.composeVersion)
        try? await store.recordHello(environmentId: environmentId, info: info, at: Date())
        if !wasConnected {
            logger.info("agent connected", metadata: ["env.id": "\(environmentId)", "agent.hostname": "\(hello.hostname)",
                                                      "agent.version": "\(hello.agentVersion)", "holding": "\(hello.holding.count)"])
        }
        for result in hello.results {
            await handleResult(result, environmentId: environmentId, routingId: routingId)
        }
        let pending = await pendingCount(environmentId)
        send(.welcome(Welcome(environmentId: environmentId, serverVersion: serverVersion, pending: pending)), to: routingId)
        await dispatch(environmentId)
    }

    private func handleResult(_ result: JobResult, environmentId: String, routingId: [UInt8]) async {
        do {
            guard let (job, ended) = try await store.finishJob(result, environmentId: environmentId) else {
                // Not a job of this environment: acknowledge so the agent stops resending, and say why.
                logger.warning("result for an unknown job", metadata: ["env.id": "\(environmentId)", "job.id": "\(result.jobId)"])
                send(.resultAck(jobId: result.jobId), to: routingId)
                return
            }
            sessions[environmentId]?.held.remove(result.jobId)
            sessions[environmentId]?.inFlight[result.jobId] = nil
            send(.resultAck(jobId: result.jobId), to: routingId)
            if ended {
                logger.info("job finished", metadata: ["job.id": "\(job.id)", "stack.id": "\(job.stackId)",
                                                       "env.id": "\(environmentId)", "state": "\(job.state.rawValue)"])
                for observer in finishObservers.values { observer(job) }
            }
        } catch {
            // Not acknowledged: the agent keeps the result and sends it again.
            logger.error("could not store a result", metadata: ["job.id": "\(result.jobId)", "error": "\(error)"])
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

    private func pendingCount(_ environmentId: String) async -> Int {
        let open = (try? await store.openJobCount(environmentId: environmentId)) ?? 0
        return max(0, open - (sessions[environmentId]?.held.count ?? 0))
    }

    // MARK: Outgoing

    private func send(_ message: ServerMessage, to routingId: [UInt8]) {
        channel.post([routingId, WireCodec.encode(message)])
    }

    /// Sends the environment's due jobs; runs once at a time per environment, again if asked meanwhile.
    private func dispatch(_ environmentId: String) async {
        guard var session = sessions[environmentId] else { return }
        if session.dispatching {
            sessions[environmentId]?.dirty = true
            return
        }
        session.dispatching = true
        session.dirty = false
        sessions[environmentId] = session
        repeat {
            sessions[environmentId]?.dirty = false
            await dispatchOnce(environmentId)
        } while sessions[environmentId]?.dirty == true
        sessions[environmentId]?.dispatching = false
    }

    private func dispatchOnce(_ environmentId: String) async {
        let heads: [JobRecord]
        do {
            heads = try await store.dispatchHeads(environmentId: environmentId)
        } catch {
            logger.error("could not read queued jobs", metadata: ["env.id": "\(environmentId)", "error": "\(error)"])
            return
        }
        for var record in heads {
            // Re-check after every await: the agent may have gone or acknowledged meanwhile.
            guard var session = sessions[environmentId] else { return }
            let id = record.job.id
            if record.job.state == .queued, !session.held.contains(id) {
                // Leave `queued` before sending, then send what is stored: a webhook that joins the job
                // commits before this (and is in the spec) or after (and makes a new job), never in between.
                do {
                    try await store.markDispatched(jobId: id, environmentId: environmentId)
                    record = try await store.job(id: id)
                } catch {
                    logger.error("could not mark a job dispatched", metadata: ["job.id": "\(id)", "error": "\(error)"])
                    return
                }
                guard let current = sessions[environmentId] else { return }
                session = current
            }
            if session.held.contains(id) { continue }
            if let sentAt = session.inFlight[id], ContinuousClock.now - sentAt < timing.resendAfter { continue }
            if session.inFlight.count >= timing.maxInFlight && session.inFlight[id] == nil { return }
            let spec = JobSpec(
                id: id, kind: record.job.kind, stackId: record.job.stackId, stackName: record.stackName,
                compose: record.compose, env: record.env,
                images: Dictionary(record.job.plan.services.map { ($0.name, $0.image) }, uniquingKeysWith: { $1 }),
                pull: record.pull, credentials: await credentials(record.job.plan.services.map(\.image))
            )
            // The agent may have reconnected (new routing id) or gone while the credentials were read.
            guard let current = sessions[environmentId] else { return }
            session = current
            do {
                let sent = try await channel.send([session.routingId, WireCodec.encode(.job(spec))])
                guard sent else { return }  // The pipe is full: the job stays queued and goes on the next tick.
                sessions[environmentId]?.inFlight[id] = .now
            } catch {
                if error.hostUnreachable {
                    logger.info("agent unreachable; its jobs stay queued", metadata: ["env.id": "\(environmentId)"])
                    drop(environmentId)
                } else {
                    logger.error("could not send a job", metadata: ["job.id": "\(id)", "error": "\(error)"])
                }
                return
            }
        }
    }

    private func drop(_ environmentId: String) {
        guard sessions.removeValue(forKey: environmentId) != nil else { return }
        logger.info("agent disconnected", metadata: ["env.id": "\(environmentId)"])
    }

    private var lastTouch = ContinuousClock.now

    private func tick() async {
        let now = ContinuousClock.now
        // lastSeenAt on disk follows the pings, a few seconds behind, in one write for all agents.
        if now - lastTouch >= .seconds(5) {
            lastTouch = now
            let heard = sessions.compactMap { now - $0.value.lastSeen < .seconds(5) ? $0.key : nil }
            do {
                try await store.touchEnvironments(ids: heard, at: Date())
            } catch {
                logger.warning("could not record agents' last-seen times", metadata: ["error": "\(error)"])
            }
        }
        for (environmentId, session) in sessions {
            if now - session.lastSeen > timing.agentTimeout {
                drop(environmentId)
                continue
            }
            if session.inFlight.values.contains(where: { now - $0 >= timing.resendAfter }) {
                await dispatch(environmentId)
            }
        }
    }

    /// Forgets an environment's connection (its keys were removed).
    public func forget(environmentId: String) {
        drop(environmentId)
    }
}

/// This build's version.
public enum WharfVersion {
    /// The version string agents and servers report.
    public static let current = "0.1.0"
}
