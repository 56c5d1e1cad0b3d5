import CZeroMQ
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One socket owned by a dedicated thread, bridged to async code.
///
/// libzmq sockets are not thread-safe, and `ZMQ_FD` is edge-triggered and easy to misuse, so the
/// socket lives on its own thread which runs `zmq_poll` over the socket, an optional monitor socket
/// and an `eventfd`. Async callers enqueue sends and wake the thread through the eventfd; received
/// messages and monitor events come out as `AsyncStream`s. The cooperative pool never blocks.
public final class ZMQChannel: Sendable {
    /// Messages received on the socket, in order (finishes at once on a channel opened with `batched: true`).
    public let incoming: AsyncStream<ZMQMessage>
    /// On a channel opened with `batched: true`: everything received since the consumer last looked,
    /// in order, at most `maxBatch` messages per batch; otherwise finishes at once. Iterate it once,
    /// from one task.
    ///
    /// A consumer that is slower than the socket gets bigger batches instead of a growing queue of
    /// small ones, so per-batch costs (a transaction, a hand-off) are paid once for many messages.
    public var batches: AsyncStream<ZMQBatch> {
        final class Signals: @unchecked Sendable {
            // Iterated by the one consumer of `batches` only.
            var iterator: AsyncStream<Void>.Iterator
            init(_ stream: AsyncStream<Void>) { iterator = stream.makeAsyncIterator() }
        }
        let signals = Signals(inboxSignals)
        return AsyncStream(unfolding: { [self] in
            while true {
                if let batch = takeInbox() { return batch }
                if await signals.iterator.next() == nil { return takeInbox() }
            }
        })
    }
    /// Monitor events, when the channel was opened with `monitor: true`; otherwise finishes at once.
    public let events: AsyncStream<ZMQMonitorEvent>
    /// The endpoint the socket bound or connected to last, with the real port after a wildcard bind.
    public let endpoint: String

    private struct PendingSend: Sendable {
        var frames: [[UInt8]]
        var completion: (@Sendable (Result<Bool, ZMQError>) -> Void)?
    }

    private struct State: Sendable {
        var sends: [PendingSend] = []
        /// An endpoint to drop and connect again before the next sends (`reconnect(_:)`).
        var reconnect: String?
        var stopping = false
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let wakeFD: Int32
    private let socket: ZMQSocket
    private let monitorSocket: ZMQSocket?
    private let incomingContinuation: AsyncStream<ZMQMessage>.Continuation
    private let eventsContinuation: AsyncStream<ZMQMonitorEvent>.Continuation
    private struct Inbox: Sendable {
        var messages: [ZMQMessage] = []
        var receivedAt: [ContinuousClock.Instant] = []
        /// Whether the consumer was told of these messages (`deferrable`).
        var signalled = false
    }
    private let inbox = Mutex(Inbox())
    private let inboxSignals: AsyncStream<Void>
    private let inboxSignalsContinuation: AsyncStream<Void>.Continuation
    private let batched: Bool
    private let deferrable: (@Sendable (ZMQMessage) -> Bool)?
    private let deferLimit: Duration
    private let maxBatch: Int
    /// The most messages the thread reads per wake-up before it sends what is queued again.
    private let maxReadsPerWake: Int
    /// A batched channel stops reading while its inbox holds this many: libzmq's receive
    /// high-water mark then pushes back on the peers, instead of the inbox growing without end.
    private let inboxLimit: Int

    /// Creates a socket, lets `configure` set options and bind or connect it, then starts its thread.
    ///
    /// `configure` runs on the calling thread before the socket's thread starts, so it may use the
    /// socket freely; afterwards only the channel's thread touches it.
    ///
    /// On a batched channel, messages for which `deferrable` says yes do not wake a waiting consumer
    /// by themselves: they are handed over with the next message that may not wait, or when the
    /// oldest of them has waited `deferLimit` (a consumer that comes looking takes them at once).
    ///
    /// The thread reads at most `4 × maxBatch` messages per wake-up, then handles queued sends
    /// before it reads on, so a flood of incoming messages does not hold replies back. A batched
    /// channel holds at most `inboxLimit` messages (default `64 × maxBatch`) that the consumer
    /// has not taken; past that it leaves them in libzmq, whose high-water marks push back.
    public init(
        context: ZMQContext,
        type: ZMQSocketType,
        monitor: Bool = false,
        batched: Bool = false,
        maxBatch: Int = 1024,
        inboxLimit: Int? = nil,
        deferrable: (@Sendable (ZMQMessage) -> Bool)? = nil,
        deferLimit: Duration = .milliseconds(100),
        name: String = "zmq-channel",
        configure: (ZMQSocket) throws -> Void
    ) throws {
        let socket = try ZMQSocket(context: context, type: type)
        var monitorSocket: ZMQSocket?
        if monitor {
            let address = "inproc://wharf-monitor-\(UUID().uuidString)"
            guard zmq_socket_monitor(socket.handle, address, ZMQ_EVENT_ALL) == 0 else {
                throw ZMQError.last("zmq_socket_monitor")
            }
            let pair = try ZMQSocket(context: context, type: .pair)
            try pair.connect(address)
            monitorSocket = pair
        }
        try configure(socket)
        self.endpoint = (try? socket.lastEndpoint) ?? ""
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else {
            throw ZMQError(errno: errno, operation: "eventfd", message: String(cString: strerror(errno)))
        }
        self.wakeFD = fd
        self.socket = socket
        self.monitorSocket = monitorSocket
        (self.incoming, self.incomingContinuation) = AsyncStream.makeStream(of: ZMQMessage.self)
        (self.events, self.eventsContinuation) = AsyncStream.makeStream(of: ZMQMonitorEvent.self)
        (self.inboxSignals, self.inboxSignalsContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.batched = batched
        self.deferrable = deferrable
        self.deferLimit = deferLimit
        self.maxBatch = max(1, maxBatch)
        self.maxReadsPerWake = 4 * max(1, maxBatch)
        self.inboxLimit = max(1, inboxLimit ?? 64 * max(1, maxBatch))
        if monitorSocket == nil { eventsContinuation.finish() }
        if batched { incomingContinuation.finish() } else { inboxSignalsContinuation.finish() }

        startThread(named: name) { [self] in self.run() }
    }

    deinit {
        close(wakeFD)
    }

    /// Queues a message and returns whether libzmq accepted it.
    ///
    /// `false` means "not sent" (`EAGAIN`: the peer's pipe is full); an `EHOSTUNREACH` from a
    /// ROUTER with `ROUTER_MANDATORY` is thrown. Either way the caller still owns the message.
    public func send(_ frames: [[UInt8]]) async throws(ZMQError) -> Bool {
        let result: Result<Bool, ZMQError> = await withCheckedContinuation { continuation in
            enqueue(PendingSend(frames: frames) { continuation.resume(returning: $0) })
        }
        return try result.get()
    }

    /// Queues several messages, in order, and returns what happened to each: whether libzmq accepted
    /// it, or the error (`EHOSTUNREACH` from a ROUTER with `ROUTER_MANDATORY`). One hand-off to the
    /// socket's thread for all of them.
    public func send(batch: [[[UInt8]]]) async -> [Result<Bool, ZMQError>] {
        guard !batch.isEmpty else { return [] }
        final class Collector: @unchecked Sendable {
            // Touched only on the socket's thread, which runs the completions one after another.
            var results: [Result<Bool, ZMQError>] = []
        }
        let collector = Collector()
        collector.results.reserveCapacity(batch.count)
        return await withCheckedContinuation { (continuation: CheckedContinuation<[Result<Bool, ZMQError>], Never>) in
            let count = batch.count
            let pending = batch.map { frames in
                PendingSend(frames: frames) { result in
                    collector.results.append(result)
                    if collector.results.count == count { continuation.resume(returning: collector.results) }
                }
            }
            enqueue(pending)
        }
    }

    /// Queues a message without waiting for the outcome (for best-effort traffic such as pings).
    public func post(_ frames: [[UInt8]]) {
        enqueue(PendingSend(frames: frames, completion: nil))
    }

    private func enqueue(_ pending: PendingSend) {
        enqueue([pending])
    }

    private func enqueue(_ pending: [PendingSend]) {
        let rejected = state.withLock { state -> [PendingSend] in
            if state.stopping { return pending }
            state.sends.append(contentsOf: pending)
            return []
        }
        if !rejected.isEmpty {
            for send in rejected {
                send.completion?(.failure(ZMQError(errno: ETERM, operation: "zmq_send", message: "channel closed")))
            }
            return
        }
        wake()
    }

    /// Drops the socket's connection to `endpoint` and connects it again, on the socket's thread,
    /// before it sends anything queued after this call. For a connection that went silent without
    /// a reset, which libzmq would otherwise keep; what waited in the old connection is lost.
    public func reconnect(_ endpoint: String) {
        state.withLock { $0.reconnect = endpoint }
        wake()
    }

    /// Stops the thread, closes the socket and finishes the streams; pending sends fail.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.stopped { return true }
                state.stopping = true
                state.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() } else { wake() }
        }
    }

    /// When the oldest message held back for the consumer was read, if the consumer was not told yet.
    private func deferredSince() -> ContinuousClock.Instant? {
        inbox.withLock { inbox in inbox.signalled ? nil : inbox.receivedAt.first }
    }

    /// Messages a batched channel has read that its consumer has not taken yet.
    public var inboxCount: Int { inbox.withLock { $0.messages.count } }

    /// Up to `maxBatch` of the messages waiting in the inbox, oldest first; nil when it is empty.
    /// Wakes the thread if the inbox was full, so that it reads again.
    private func takeInbox() -> ZMQBatch? {
        let (batch, wasFull) = inbox.withLock { inbox -> (ZMQBatch?, Bool) in
            let wasFull = inbox.messages.count >= inboxLimit
            return (Self.take(&inbox, upTo: maxBatch), wasFull)
        }
        if wasFull { wake() }
        return batch
    }

    private static func take(_ inbox: inout Inbox, upTo maxBatch: Int) -> ZMQBatch? {
        guard !inbox.messages.isEmpty else { return nil }
        let count = min(maxBatch, inbox.messages.count)
        if count == inbox.messages.count {
            defer { inbox = Inbox() }
            return ZMQBatch(messages: inbox.messages, receivedAt: inbox.receivedAt)
        }
        defer {
            inbox.messages.removeFirst(count)
            inbox.receivedAt.removeFirst(count)
        }
        return ZMQBatch(messages: Array(inbox.messages[..<count]), receivedAt: Array(inbox.receivedAt[..<count]))
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: The socket's thread

    private func run() {
        var items = [zmq_pollitem_t](repeating: zmq_pollitem_t(), count: monitorSocket == nil ? 2 : 3)
        items[0].socket = socket.handle
        items[0].events = Int16(ZMQ_POLLIN)
        items[1].socket = nil
        items[1].fd = wakeFD
        items[1].events = Int16(ZMQ_POLLIN)
        if let monitorSocket {
            items[2].socket = monitorSocket.handle
            items[2].events = Int16(ZMQ_POLLIN)
        }
        var failure: ZMQError?
        // The last wake-up stopped reading at `maxReadsPerWake`: more may be waiting.
        var moreToRead = false
        loop: while true {
            // A full inbox is not added to until the consumer takes from it (`takeInbox` wakes us).
            let room = batched ? inboxLimit - inbox.withLock { $0.messages.count } : maxReadsPerWake
            items[0].events = room > 0 ? Int16(ZMQ_POLLIN) : 0
            // Messages held back (`deferrable`) are handed over when the oldest has waited `deferLimit`.
            var timeout = moreToRead && room > 0 ? 0 : 1000
            if deferrable != nil, let oldest = deferredSince() {
                let left = deferLimit - (ContinuousClock.now - oldest)
                let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
                timeout = max(0, min(timeout, Int(milliseconds)))
            }
            let rc = zmq_poll(&items, Int32(items.count), timeout)
            if rc < 0 {
                let error = ZMQError.last("zmq_poll")
                if error.errno == EINTR { continue }
                failure = error
                break
            }
            if items[1].revents != 0 {
                var counter: UInt64 = 0
                _ = read(wakeFD, &counter, MemoryLayout<UInt64>.size)
            }
            let (sends, stopping, reconnect) = state.withLock { state -> ([PendingSend], Bool, String?) in
                defer {
                    state.sends.removeAll(keepingCapacity: true)
                    state.reconnect = nil
                }
                return (state.sends, state.stopping, state.reconnect)
            }
            if let reconnect, !stopping {
                try? socket.disconnect(reconnect)
                try? socket.connect(reconnect)
            }
            if stopping {
                for pending in sends {
                    pending.completion?(.failure(ZMQError(errno: ETERM, operation: "zmq_send", message: "channel closed")))
                }
                break loop
            }
            var terminated: ZMQError?
            for pending in sends {
                if let terminated {
                    pending.completion?(.failure(terminated))
                    continue
                }
                do {
                    let sent = try socket.send(pending.frames, dontWait: true)
                    pending.completion?(.success(sent))
                } catch {
                    pending.completion?(.failure(error as! ZMQError))
                    if (error as! ZMQError).contextTerminated { terminated = error as? ZMQError }
                }
            }
            if let terminated { failure = terminated; break loop }
            // Drain everything that is readable: zmq_poll only says "at least one".
            do {
                if batched {
                    var received: [ZMQMessage] = []
                    let cap = min(maxReadsPerWake, max(0, room))
                    while received.count < cap, let message = try socket.receive(dontWait: true) {
                        received.append(message)
                    }
                    moreToRead = cap > 0 && received.count == cap
                    // Without `deferrable` nothing is ever held back: only a wake-up that read something looks.
                    let now = ContinuousClock.now
                    let urgent = deferrable.map { deferrable in received.contains { !deferrable($0) } } ?? !received.isEmpty
                    let signal = (received.isEmpty && deferrable == nil) ? false : inbox.withLock { inbox -> Bool in
                        inbox.messages.append(contentsOf: received)
                        inbox.receivedAt.append(contentsOf: repeatElement(now, count: received.count))
                        guard !inbox.signalled, let oldest = inbox.receivedAt.first else { return false }
                        guard urgent || now - oldest >= deferLimit else { return false }
                        inbox.signalled = true
                        return true
                    }
                    if signal { inboxSignalsContinuation.yield() }
                } else {
                    var count = 0
                    while count < maxReadsPerWake, let message = try socket.receive(dontWait: true) {
                        incomingContinuation.yield(message)
                        count += 1
                    }
                    moreToRead = count == maxReadsPerWake
                }
                if let monitorSocket {
                    while let message = try monitorSocket.receive(dontWait: true) {
                        if let event = ZMQMonitorEvent(frames: message.frames) { eventsContinuation.yield(event) }
                    }
                }
            } catch {
                failure = error as? ZMQError
                if failure?.contextTerminated == true { break loop }
            }
        }
        _ = failure
        if let monitorSocket {
            zmq_socket_monitor(socket.handle, nil, 0)
            monitorSocket.close()
        }
        socket.close()
        incomingContinuation.finish()
        inboxSignalsContinuation.finish()
        eventsContinuation.finish()
        let (leftovers, waiters) = state.withLock { state -> ([PendingSend], [CheckedContinuation<Void, Never>]) in
            state.stopping = true
            state.stopped = true
            defer { state.sends.removeAll(); state.stopWaiters.removeAll() }
            return (state.sends, state.stopWaiters)
        }
        for pending in leftovers {
            pending.completion?(.failure(ZMQError(errno: ETERM, operation: "zmq_send", message: "channel closed")))
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Messages a batched channel received, in order, with when its thread read each one.
public struct ZMQBatch: Sendable {
    /// The messages, in the order they arrived.
    public var messages: [ZMQMessage]
    /// When the channel's thread read each message (before any wait for the consumer), by index.
    public var receivedAt: [ContinuousClock.Instant]
}

/// Starts a thread that owns a socket, named `name` both for Foundation and as the system shows it
/// (`top -H`, `perf`, `/proc/PID/task/*/comm`; its first 15 bytes). Foundation's `Thread.name` does
/// not reach the system on Linux, so the thread would otherwise carry the name of the thread that
/// started it.
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        wharf_name_current_thread(name)
        body()
    }
    thread.name = name
    thread.start()
}
