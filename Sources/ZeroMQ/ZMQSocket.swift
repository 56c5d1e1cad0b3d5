import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// The socket types this project uses.
public enum ZMQSocketType: Sendable {
    case router, dealer, pair, rep, req

    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .rep: ZMQ_REP
        case .req: ZMQ_REQ
        }
    }
}

/// A received multipart message with the connection metadata libzmq attached to it.
public struct ZMQMessage: Sendable, Equatable {
    /// The frames in order; on a ROUTER the first one is the peer's routing id.
    public var frames: [[UInt8]]
    /// The ZAP handler's User-Id for the connection the message came on, if any.
    public var userId: String?
    /// The peer's address, when libzmq knows it.
    public var peerAddress: String?

    /// Makes a message from frames.
    public init(frames: [[UInt8]], userId: String? = nil, peerAddress: String? = nil) {
        self.frames = frames
        self.userId = userId
        self.peerAddress = peerAddress
    }
}

/// A libzmq socket.
///
/// libzmq sockets are not thread-safe. `@unchecked Sendable` rests on this invariant: a socket is
/// used by one thread at a time — the thread that polls it (see `ZMQChannel`) — and handed over
/// between threads only before that thread starts or after it ends.
public final class ZMQSocket: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var closed = false
    /// The context is kept alive for as long as the socket.
    public let context: ZMQContext

    /// Creates a socket of `type` in `context`. Linger defaults to 0 so that shutdown never hangs.
    ///
    /// A ROUTER numbers the peers that set no routing id of their own from a start libzmq 4.3.4
    /// takes from `rand()`, which nothing seeds: 0x6b8b4567 in every process, then one up per
    /// peer. A peer may set its own routing id, and when the ROUTER later gives a peer a number
    /// that one took, libzmq aborts the process (`Assertion failed: ok (src/socket_base.cpp:2130)`,
    /// measured). So `rand()` is seeded from the system's CSPRNG before each ROUTER is made: an
    /// enrolled agent can no longer tell which numbers are coming.
    public init(context: ZMQContext, type: ZMQSocketType) throws {
        if type == .router { srand(UInt32.random(in: .min ... .max)) }
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        self.handle = handle
        self.context = context
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    /// Closes the socket; later calls are ignored.
    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    // MARK: Endpoints

    /// Binds to an endpoint such as `tcp://127.0.0.1:*`; read `lastEndpoint` for the chosen port.
    public func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    /// Connects to an endpoint; libzmq connects (and reconnects) in the background.
    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// Stops connecting to an endpoint.
    public func disconnect(_ endpoint: String) throws {
        guard zmq_disconnect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_disconnect(\(endpoint))") }
    }

    /// The endpoint most recently bound or connected, with the real port after a wildcard bind.
    public var lastEndpoint: String {
        get throws { try stringOption(ZMQ_LAST_ENDPOINT) }
    }

    // MARK: Raw options

    /// Sets an integer option.
    public func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    /// Sets a 64-bit integer option.
    public func setOption64(_ option: Int32, _ value: Int64) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    /// Sets a binary option.
    public func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// Sets a string option (without its terminating NUL, as libzmq expects).
    public func setOption(_ option: Int32, string: String) throws {
        try setOption(option, bytes: Array(string.utf8))
    }

    /// Reads an integer option.
    public func intOption(_ option: Int32) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(handle, option, &value, &size) == 0 else {
            throw ZMQError.last("zmq_getsockopt(\(option))")
        }
        return value
    }

    /// Reads a string option.
    public func stringOption(_ option: Int32) throws -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        let rc = buffer.withUnsafeMutableBytes { zmq_getsockopt(handle, option, $0.baseAddress, &size) }
        guard rc == 0 else { throw ZMQError.last("zmq_getsockopt(\(option))") }
        return String(decoding: buffer.prefix(max(0, size - 1)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Send and receive

    /// Sends every frame as one multipart message.
    ///
    /// Returns false when the message was not queued because it would block (`EAGAIN`); with
    /// `dontWait` false that only happens on a ROUTER with `ROUTER_MANDATORY` at its high-water mark.
    /// Throws for every other failure, including `EHOSTUNREACH` for an unknown ROUTER peer.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = true) throws -> Bool {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 {
                let error = ZMQError.last("zmq_send")
                // Failing on the first frame means nothing was queued; libzmq sends multipart atomically.
                if error.wouldBlock && index == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Receives one whole multipart message, or nil when none is waiting and `dontWait` is set.
    public func receive(dontWait: Bool = true) throws -> ZMQMessage? {
        // zmq_msg_t must not be copied or moved while initialised, so it lives on the heap.
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { msg.deallocate() }
        var frames: [[UInt8]] = []
        var userId: String?
        var peerAddress: String?
        while true {
            guard zmq_msg_init(msg) == 0 else { throw ZMQError.last("zmq_msg_init") }
            let rc = zmq_msg_recv(msg, handle, dontWait ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                zmq_msg_close(msg)
                if error.wouldBlock && frames.isEmpty { return nil }
                throw error
            }
            let size = zmq_msg_size(msg)
            if size > 0, let data = zmq_msg_data(msg) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            // A ROUTER makes the routing-id frame itself, without metadata: read it off the peer's frames.
            if userId == nil, let value = zmq_msg_gets(msg, "User-Id") { userId = String(cString: value) }
            if peerAddress == nil, let value = zmq_msg_gets(msg, "Peer-Address") { peerAddress = String(cString: value) }
            let more = zmq_msg_more(msg) != 0
            zmq_msg_close(msg)
            if !more { break }
        }
        return ZMQMessage(frames: frames, userId: userId, peerAddress: peerAddress)
    }

    /// True when a message can be read now (the ZMQ_EVENTS flag, which also re-arms ZMQ_FD).
    public var hasIncoming: Bool {
        ((try? intOption(ZMQ_EVENTS)) ?? 0) & Int32(ZMQ_POLLIN) != 0
    }
}
