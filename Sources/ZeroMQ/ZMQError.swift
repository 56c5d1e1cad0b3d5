import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// An error reported by libzmq, with the errno and zmq's own message.
public struct ZMQError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The errno value libzmq reported.
    public let errno: Int32
    /// The operation that failed, such as `zmq_bind`.
    public let operation: String
    /// libzmq's text for the errno.
    public let message: String

    /// Captures the calling thread's current `zmq_errno()`.
    public static func last(_ operation: String) -> ZMQError {
        let code = zmq_errno()
        return ZMQError(errno: code, operation: operation, message: String(cString: zmq_strerror(code)))
    }

    /// Makes an error for a condition detected by this binding rather than libzmq.
    public init(errno: Int32, operation: String, message: String) {
        self.errno = errno
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message) (errno \(errno))" }

    /// True when the call would have blocked (`EAGAIN`): nothing was sent or received.
    public var wouldBlock: Bool { errno == EAGAIN }
    /// True when a ROUTER with `ROUTER_MANDATORY` has no such peer (`EHOSTUNREACH`).
    public var hostUnreachable: Bool { errno == EHOSTUNREACH }
    /// True when the context was terminated underneath the socket.
    public var contextTerminated: Bool { errno == ETERM }
}
