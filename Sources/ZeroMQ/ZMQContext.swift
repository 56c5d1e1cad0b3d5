import CZeroMQ

/// A libzmq context: the owner of I/O threads and of every socket created from it.
///
/// libzmq contexts are thread-safe, which is the invariant behind `@unchecked Sendable`.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Creates a context; `maxSockets` raises libzmq's default of 1023 for processes that hold many sockets.
    public init(maxSockets: Int32? = nil, ioThreads: Int32 = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if let maxSockets, zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, maxSockets) != 0 {
            zmq_ctx_term(handle)
            throw ZMQError.last("zmq_ctx_set(MAX_SOCKETS)")
        }
        if ioThreads != 1, zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
            zmq_ctx_term(handle)
            throw ZMQError.last("zmq_ctx_set(IO_THREADS)")
        }
    }

    /// The maximum number of sockets this context allows.
    public var maxSockets: Int32 { zmq_ctx_get(handle, ZMQ_MAX_SOCKETS) }

    /// Makes every blocking call on this context's sockets return `ETERM`, so their threads can close them.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    deinit {
        // Every socket must be closed (with a short linger) before this point, or zmq_ctx_term blocks.
        zmq_ctx_term(handle)
    }

    /// The libzmq version this process is linked against, such as (4, 3, 4).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }

    /// Whether libzmq was built with the CURVE mechanism.
    public static var hasCurve: Bool { zmq_has("curve") == 1 }
}
