import CZeroMQ

/// A socket monitor event (`zmq_socket_monitor`).
public struct ZMQMonitorEvent: Sendable, Equatable {
    /// The kinds of event this project acts on; others keep their raw value.
    public enum Kind: Sendable, Equatable {
        case connected, connectDelayed, connectRetried, listening, bindFailed, accepted, acceptFailed
        case closed, closeFailed, disconnected, monitorStopped
        case handshakeFailedNoDetail, handshakeSucceeded, handshakeFailedProtocol, handshakeFailedAuth
        case other(UInt16)

        init(raw: UInt16) {
            switch Int32(raw) {
            case ZMQ_EVENT_CONNECTED: self = .connected
            case ZMQ_EVENT_CONNECT_DELAYED: self = .connectDelayed
            case ZMQ_EVENT_CONNECT_RETRIED: self = .connectRetried
            case ZMQ_EVENT_LISTENING: self = .listening
            case ZMQ_EVENT_BIND_FAILED: self = .bindFailed
            case ZMQ_EVENT_ACCEPTED: self = .accepted
            case ZMQ_EVENT_ACCEPT_FAILED: self = .acceptFailed
            case ZMQ_EVENT_CLOSED: self = .closed
            case ZMQ_EVENT_CLOSE_FAILED: self = .closeFailed
            case ZMQ_EVENT_DISCONNECTED: self = .disconnected
            case ZMQ_EVENT_MONITOR_STOPPED: self = .monitorStopped
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: self = .handshakeFailedNoDetail
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: self = .handshakeSucceeded
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: self = .handshakeFailedProtocol
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: self = .handshakeFailedAuth
            default: self = .other(raw)
            }
        }
    }

    /// What happened.
    public var kind: Kind
    /// The event's value: an fd, an errno, or a status code (400 for a rejected CURVE key).
    public var value: UInt32
    /// The endpoint the event is about.
    public var endpoint: String

    /// Decodes the two frames libzmq sends on a monitor socket.
    public init?(frames: [[UInt8]]) {
        guard frames.count >= 2, frames[0].count >= 6 else { return nil }
        let head = frames[0]
        let raw = UInt16(head[0]) | UInt16(head[1]) << 8
        let value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        self.kind = Kind(raw: raw)
        self.value = value
        self.endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}
