import CZeroMQ
import Foundation
import Synchronization

/// A ZAP (RFC 27) authentication request for one incoming connection.
public struct ZAPRequest: Sendable, Equatable {
    /// The ZAP domain the server socket set.
    public var domain: String
    /// The peer's IP address.
    public var address: String
    /// The mechanism, such as "CURVE".
    public var mechanism: String
    /// For CURVE, the client's 32-byte public key.
    public var clientKey: CurveKey?
}

/// The handler's verdict on a ZAP request.
public enum ZAPDecision: Sendable, Equatable {
    /// Admit the peer; `userId` is attached to every message it sends (read back as "User-Id").
    case allow(userId: String)
    /// Refuse the handshake.
    case deny(reason: String)
}

/// A ZAP handler serving `inproc://zeromq.zap.01` in one context, on its own thread.
///
/// It must be started before any socket of that context binds with a ZAP domain. Servers should
/// also set `ZMQ_ZAP_ENFORCE_DOMAIN` (see `ZMQSocket.makeCurveServer`) so that a dead handler fails closed.
public final class ZAPHandler: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Binds the ZAP endpoint and starts answering requests with `authenticate`.
    public init(context: ZMQContext, authenticate: @escaping @Sendable (ZAPRequest) -> ZAPDecision) throws {
        let socket = try ZMQSocket(context: context, type: .rep)
        try socket.bind("inproc://zeromq.zap.01")
        startThread(named: "zmq-zap") { [self] in
            self.serve(socket: socket, authenticate: authenticate)
        }
    }

    /// Stops the handler thread and closes its socket.
    public func shutdown() async {
        stopping.store(true, ordering: .releasing)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { state -> Bool in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func serve(socket: ZMQSocket, authenticate: @Sendable (ZAPRequest) -> ZAPDecision) {
        var item = zmq_pollitem_t()
        item.socket = socket.handle
        item.events = Int16(ZMQ_POLLIN)
        while !stopping.load(ordering: .acquiring) {
            let rc = zmq_poll(&item, 1, 200)
            if rc < 0 {
                if ZMQError.last("zmq_poll").contextTerminated { break }
                continue
            }
            guard rc > 0 else { continue }
            guard let message = try? socket.receive(dontWait: true) else { continue }
            let reply = Self.reply(to: message.frames, authenticate: authenticate)
            _ = try? socket.send(reply, dontWait: true)
        }
        socket.close()
        let waiters = finished.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.done = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Builds the six reply frames (version, request id, status, text, user id, metadata).
    static func reply(to frames: [[UInt8]], authenticate: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        func text(_ index: Int) -> String { index < frames.count ? String(decoding: frames[index], as: UTF8.self) : "" }
        let requestId = frames.count > 1 ? frames[1] : []
        func answer(_ status: String, _ statusText: String, _ userId: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestId, Array(status.utf8), Array(statusText.utf8), Array(userId.utf8), []]
        }
        guard frames.count >= 6, text(0) == "1.0" else {
            return answer("500", "malformed ZAP request")
        }
        let mechanism = text(5)
        var key: CurveKey?
        if mechanism == "CURVE" {
            guard frames.count >= 7, let parsed = try? CurveKey(bytes: frames[6]) else {
                return answer("400", "missing CURVE key")
            }
            key = parsed
        }
        let request = ZAPRequest(domain: text(2), address: text(3), mechanism: mechanism, clientKey: key)
        switch authenticate(request) {
        case .allow(let userId): return answer("200", "OK", userId)
        case .deny(let reason): return answer("400", reason)
        }
    }
}
