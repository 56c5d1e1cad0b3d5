import CZeroMQ

/// Typed setters for the options this project uses.
extension ZMQSocket {
    /// How long pending messages are kept after close; 0 drops them so shutdown never hangs.
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, milliseconds) }

    /// The routing id this socket presents to a ROUTER peer. Servers must not trust it.
    public func setRoutingId(_ id: [UInt8]) throws { try setOption(ZMQ_ROUTING_ID, bytes: id) }

    /// Outgoing high-water mark, in messages.
    public func setSendHighWaterMark(_ value: Int32) throws { try setOption(ZMQ_SNDHWM, value) }

    /// Incoming high-water mark, in messages.
    public func setReceiveHighWaterMark(_ value: Int32) throws { try setOption(ZMQ_RCVHWM, value) }

    /// ZMTP heartbeats: PING every `interval`, drop the connection after `timeout` without traffic,
    /// and ask the peer to drop it after `ttl`. All in milliseconds.
    public func setHeartbeat(intervalMs: Int32, timeoutMs: Int32, ttlMs: Int32) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, intervalMs)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, timeoutMs)
        try setOption(ZMQ_HEARTBEAT_TTL, ttlMs)
    }

    /// Makes a ROUTER report unroutable or full peers (`EHOSTUNREACH`/`EAGAIN`) instead of dropping silently.
    public func setRouterMandatory(_ on: Bool) throws { try setOption(ZMQ_ROUTER_MANDATORY, on ? Int32(1) : Int32(0)) }

    /// Lets a new connection with a routing id already in use take that id over.
    public func setRouterHandover(_ on: Bool) throws { try setOption(ZMQ_ROUTER_HANDOVER, on ? Int32(1) : Int32(0)) }

    /// Queues messages only to completed connections.
    public func setImmediate(_ on: Bool) throws { try setOption(ZMQ_IMMEDIATE, on ? Int32(1) : Int32(0)) }

    /// Turns on TCP keepalive (1), off (0), or leaves the OS default (-1).
    public func setTCPKeepalive(_ value: Int32) throws { try setOption(ZMQ_TCP_KEEPALIVE, value) }

    /// Turns TCP keepalive on with these timings: the kernel closes a connection whose peer has
    /// vanished after `idleSeconds + intervalSeconds * count`, with no libzmq timer involved.
    public func setTCPKeepalive(idleSeconds: Int32, intervalSeconds: Int32, count: Int32) throws {
        try setOption(ZMQ_TCP_KEEPALIVE, Int32(1))
        try setOption(ZMQ_TCP_KEEPALIVE_IDLE, idleSeconds)
        try setOption(ZMQ_TCP_KEEPALIVE_INTVL, intervalSeconds)
        try setOption(ZMQ_TCP_KEEPALIVE_CNT, count)
    }

    /// The listen backlog for `bind`.
    public func setBacklog(_ value: Int32) throws { try setOption(ZMQ_BACKLOG, value) }

    /// The largest inbound message, in bytes; a peer that sends more is disconnected.
    public func setMaxMessageSize(_ bytes: Int64) throws { try setOption64(ZMQ_MAXMSGSIZE, bytes) }

    /// Reconnect back-off for connecting sockets, in milliseconds.
    public func setReconnectInterval(milliseconds: Int32, maxMilliseconds: Int32) throws {
        try setOption(ZMQ_RECONNECT_IVL, milliseconds)
        try setOption(ZMQ_RECONNECT_IVL_MAX, maxMilliseconds)
    }

    /// The longest a ZMTP handshake may take, in milliseconds.
    public func setHandshakeInterval(milliseconds: Int32) throws { try setOption(ZMQ_HANDSHAKE_IVL, milliseconds) }

    /// Makes this socket a CURVE server with `secretKey`, authenticating clients through ZAP in `zapDomain`.
    ///
    /// The domain must not be empty and ZAP is enforced: with both set, a missing or dead ZAP
    /// handler fails closed (shared/ZEROMQ-NOTES.md).
    public func makeCurveServer(secretKey: CurveKey, zapDomain: String) throws {
        precondition(!zapDomain.isEmpty, "an empty ZAP domain skips authentication")
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: secretKey.bytes)
        try setOption(ZMQ_ZAP_DOMAIN, string: zapDomain)
        try setOption(wharf_zmq_zap_enforce_domain, Int32(1))
    }

    /// Makes this socket a CURVE client that accepts only the server holding `serverKey`.
    public func makeCurveClient(keyPair: CurveKeyPair, serverKey: CurveKey) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: serverKey.bytes)
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: keyPair.publicKey.bytes)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: keyPair.secretKey.bytes)
    }
}
