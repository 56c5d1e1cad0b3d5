import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// Webhook calls without a body, taken on the connection's event loop as they are read.
///
/// Registries and CI jobs call a webhook with its token and a query, and no body. Through
/// Hummingbird such a call crosses from the event loop to a task and back; that hop cost as much
/// as everything Wharf does for the call (bench/FINDINGS.md). Here the same work — the token, the
/// rate limits, the trigger, the plan, the job, the 202 — runs where the request was decoded:
/// - a call that joins its stack's queued deploy in memory (a hot stack's repeated call) is
///   answered at once;
/// - a call that needs the store's writer (a new job, or a change to the queued one) goes to its
///   next group commit, and is answered on the event loop once that has committed.
///
/// Every other call, and any call this lane is not sure of, goes on to Hummingbird untouched, and
/// its answer is what it always was (`API.takeOnLane` says which calls stay here). So does a call
/// the store failed: nothing of it was written, and the router answers it as it would have.
final class WebhookLane: Sendable {
    /// A call's 202: the job's JSON and its status URL.
    struct Accepted: Sendable {
        var body: ByteBuffer
        var location: String
    }

    /// What the lane does with a call.
    enum Take {
        /// Hummingbird answers it.
        case passOn
        /// The 202, now.
        case accepted(Accepted)
        /// The store is writing it: `later` gets what makes the 202 (run on the event loop, so the
        /// writer's thread only hands it over), or nil for Hummingbird to take the call.
        case later
    }

    typealias Later = @Sendable ((@Sendable () -> Accepted)?) -> Void
    typealias Answer = @Sendable (_ token: Substring, _ query: Substring?, _ headers: HTTPFields, _ clientAddress: String,
                                  _ later: @escaping Later) -> Take

    let answer: Answer
    let serverName: String?
    /// Calls answered here, and calls taken here that the store failed and Hummingbird then took
    /// (for tests).
    let answered = Atomic<Int>(0)
    let handedOn = Atomic<Int>(0)

    init(serverName: String?, answer: @escaping Answer) {
        self.serverName = serverName
        self.answer = answer
    }

    /// What of a call the lane reads: its token, and its query string if it has one.
    struct Call {
        var token: Substring
        var query: Substring?
    }

    /// The token and query of a `POST /api/stacks/webhooks/<token>` that may be answered here,
    /// read from the request head alone: nil for any other request, one that asks for the
    /// connection to close, one that expects a `100 Continue`, or one whose target has a `#`
    /// (Hummingbird's URI ends the query there; no client sends one).
    static func candidate(_ head: HTTPRequest) -> Call? {
        guard head.method == .post, let target = head.path, head.headerFields[.expect] == nil,
              !target.utf8.contains(UInt8(ascii: "#")) else { return nil }
        if let connection = head.headerFields[.connection], connection.lowercased() != "keep-alive" { return nil }
        let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        guard let token = WharfResponder.webhookToken(in: target[..<(mark ?? target.endIndex)]) else { return nil }
        return Call(token: token, query: mark.map { target[target.utf8.index(after: $0)...] })
    }

    /// A call's answer: now, or later (`later` gets what makes it, or nil when Hummingbird is to
    /// take the call); nil when Hummingbird must answer it now.
    enum Response {
        case now(head: HTTPResponse, body: ByteBuffer)
        case later
    }

    func respond(to call: Call, headers: HTTPFields, remoteAddress: SocketAddress?, later: @escaping Later) -> Response? {
        switch answer(call.token, call.query, headers, remoteAddress?.ipAddress ?? "unknown", later) {
        case .passOn: return nil
        case .accepted(let accepted):
            let (head, body) = response(accepted)
            return .now(head: head, body: body)
        case .later: return .later
        }
    }

    /// The headers Hummingbird writes for `Response.json(…, status: .accepted, headers: [.location: …])`.
    func response(_ accepted: Accepted) -> (head: HTTPResponse, body: ByteBuffer) {
        answered.add(1, ordering: .relaxed)
        var fields = HTTPFields()
        fields.reserveCapacity(5)
        fields[.location] = accepted.location
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = String(accepted.body.readableBytes)
        fields[.date] = HTTPDate.now()
        if let serverName { fields[.server] = serverName }
        return (HTTPResponse(status: .accepted, headerFields: fields), accepted.body)
    }
}

/// Sits between Hummingbird's connection-state handler and its request handling: holds a
/// candidate's head until its end, answers it when `WebhookLane` can, and otherwise passes every
/// part on as it came.
///
/// Answers leave in the order their requests came:
/// - a call is taken here only when every request passed on before it has had its answer written
///   (`waiting` counts them, down at each response's end on its way out);
/// - while the store writes a call taken here (`parked`), what the channel hands in after it —
///   request parts, events (the client's half-close), errors (a bad request) — waits in `backlog`,
///   and once anything waits there the channel reads no more, until the call is answered or
///   passed on.
///
/// The connection-state handler before this one sees every request and every answer, so idle
/// timeouts and graceful shutdown work as before (a parked call is a request in progress).
final class WebhookLaneHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the channel handed in while a call was parked, in its order.
    private enum Inbound {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private let lane: WebhookLane
    /// A candidate's head, waiting for its end (or a body part, which sends it on).
    private var held: (head: HTTPRequest, call: WebhookLane.Call)?
    /// Requests passed on whose answer has not ended yet.
    private var waiting = 0
    /// A call the store is writing (its head and end, as read); what comes in meanwhile waits in `backlog`.
    private var parked: (head: HTTPRequest, end: HTTPRequestPart)?
    private var backlog: [Inbound] = []
    /// A read asked for while a call was parked and something already waited in `backlog`, made
    /// once none is. While the backlog is empty a read goes on as asked: the socket stays
    /// registered for reading (holding it would cost two `epoll_ctl` calls per parked call), and
    /// what a client sends meanwhile waits in `backlog`. So the backlog holds at most one read's
    /// worth: bounded, and no read is lost.
    private var readHeld = false

    init(lane: WebhookLane) {
        self.lane = lane
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if parked != nil {
            backlog.append(.part(part))
            return
        }
        read(part, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if parked != nil {
            backlog.append(.event(event))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if parked != nil {
            backlog.append(.error(error))
            return
        }
        context.fireErrorCaught(error)
    }

    private func read(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            if waiting == 0, let call = WebhookLane.candidate(head) {
                held = (head, call)
                return
            }
            waiting += 1
            context.fireChannelRead(wrapInboundOut(part))
        case .body:
            passHeldOn(context)
            context.fireChannelRead(wrapInboundOut(part))
        case .end:
            if let (head, call) = held {
                held = nil
                let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
                let response = lane.respond(to: call, headers: head.headerFields, remoteAddress: context.channel.remoteAddress) { made in
                    bound.eventLoop.execute { bound.value.handler.unpark(made, context: bound.value.context) }
                }
                switch response {
                case .now(let responseHead, let body)?:
                    write(responseHead, body, context: context)
                    return
                case .later?:
                    parked = (head, part)
                    return
                case nil:
                    waiting += 1
                    context.fireChannelRead(wrapInboundOut(.head(head)))
                }
            }
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// The store is done with the parked call: its answer goes out, or the call goes on to
    /// Hummingbird; then what waited behind it is handed in.
    private func unpark(_ made: (@Sendable () -> WebhookLane.Accepted)?, context: ChannelHandlerContext) {
        guard let (head, end) = parked else { return }
        parked = nil
        // A connection closed meanwhile (reset by the client): nobody to answer. A written call is
        // still logged and counted, as the router would have: its job stays.
        guard context.channel.isActive else {
            _ = made?()
            backlog.removeAll()
            return
        }
        if let made {
            let (responseHead, body) = lane.response(made())
            write(responseHead, body, context: context)
        } else {
            lane.handedOn.add(1, ordering: .relaxed)
            waiting += 1
            context.fireChannelRead(wrapInboundOut(.head(head)))
            context.fireChannelRead(wrapInboundOut(end))
        }
        while parked == nil, !backlog.isEmpty {
            switch backlog.removeFirst() {
            case .part(let part): read(part, context: context)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        // Hummingbird's channel hands on what it was given at the end of a read.
        context.fireChannelReadComplete()
        if parked == nil, readHeld {
            readHeld = false
            context.read()
        }
    }

    private func write(_ head: HTTPResponse, _ body: ByteBuffer, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if parked != nil, !backlog.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // (An answer to no request passed on — Hummingbird's 400 for a head it could not parse — counts for none.)
        if case .end = unwrapOutboundIn(data), waiting > 0 { waiting -= 1 }
        context.write(data, promise: promise)
    }

    private func passHeldOn(_ context: ChannelHandlerContext) {
        guard let (head, _) = held else { return }
        held = nil
        waiting += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}

/// Hummingbird's HTTP/1 child channel (`HTTP1Channel`), with `WebhookLaneHandler` after its
/// connection-state handler. Built the same way otherwise: the same codecs and decoder limits, and
/// the same request loop (`handleHTTP`).
struct WharfHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let lane: WebhookLane?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // HTTP1Channel.Configuration.DecoderConfiguration's defaults.
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = 80 * 1024
            limits.maxHeaderListSize = 80 * 1024
            limits.maxHeaderFieldCount = 1000
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            if let lane { try pipeline.addHandler(WebhookLaneHandler(lane: lane)) }
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1 server, with calls that join a queued deploy answered by `lane`.
    static func wharf(lane: WebhookLane?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in WharfHTTP1Channel(responder: responder, lane: lane) }
    }
}

/// The `Date` header's value (RFC 9110's IMF-fixdate), made once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let second = spec.tv_sec
        return cache.withLock { cached in
            if cached.second != second {
                cached = (second, format(second))
            }
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
