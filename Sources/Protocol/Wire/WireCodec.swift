import Foundation

/// Why a frame could not be decoded.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `malformed`, `unknown_type`, `unsupported_version` or `too_large`.
    public var code: String
    public var message: String

    public var description: String { "\(code): \(message)" }
}

/// Encodes and decodes the link's messages: one JSON frame, `{"v":1,"type":"…","body":{…}}`.
///
/// Decoding never traps: any frame that is not a message of a known type throws `WireError`.
public enum WireCodec {
    /// The wire version this build speaks.
    public static let version = 1
    /// The largest frame either side accepts.
    public static let maxFrameBytes = 4 << 20

    /// The bytes `text` takes as a JSON string in a frame, quotes included: `"`, `\\`, `/` and the
    /// short control escapes take 2 bytes, other control characters 6 (`\u00XX`), the rest their
    /// UTF-8. Lets a sender keep a frame under `maxFrameBytes` without encoding it first.
    public static func encodedLength(of text: String) -> Int {
        var length = 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: length += 2
            case 0..<0x20: length += 6
            default: length += 1
            }
        }
        return length
    }

    private struct Envelope<Body: Codable>: Codable {
        var v: Int
        var type: String
        var body: Body
    }

    private struct JobRef: Codable { var jobId: String }
    private struct Pending: Codable {
        var pending: Int
        var pingSeconds: Int?

        init(pending: Int, pingSeconds: Int? = nil) {
            self.pending = pending
            self.pingSeconds = pingSeconds
        }

        private enum CodingKeys: String, CodingKey { case pending, pingSeconds }

        /// A `pingSeconds` this side cannot read (a later server's) counts as none.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            pending = try container.decode(Int.self, forKey: .pending)
            pingSeconds = try? container.decodeIfPresent(Int.self, forKey: .pingSeconds)
        }
    }
    private struct ErrorBody: Codable { var code: String; var message: String }
    private struct Empty: Codable {}

    // Configured once and never changed afterwards, so safe to share between threads.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    private static let decoder = JSONDecoder()

    private static func frame<Body: Codable>(_ type: String, _ body: Body) -> [UInt8] {
        // Encoding our own Codable structs cannot fail.
        Array(try! encoder.encode(Envelope(v: version, type: type, body: body)))
    }

    // The frames without a payload, encoded once: a fleet's pings are most of the link's traffic.
    private static let pingFrame = frame("ping", Empty())

    /// Whether a frame is an agent's ping as this side encodes it (no parsing).
    public static func isPing(_ bytes: [UInt8]) -> Bool { bytes == pingFrame }
    private static let byeFrame = frame("bye", Empty())
    private static let idlePongFrame = frame("pong", Pending(pending: 0))
    /// An idle pong asking for each interval a server may ask for (`PingPolicy`): a large fleet's
    /// pongs carry one, thousands a second.
    private static let idlePongFrames: [[UInt8]] = (0...PingPolicy.maxSeconds).map {
        frame("pong", Pending(pending: 0, pingSeconds: $0))
    }
    private static let idlePongHead = Array(#"{"body":{"pending":0,"pingSeconds":"#.utf8)
    private static let idlePongTail = Array(#"},"type":"pong","v":1}"#.utf8)

    /// The interval of an idle pong as `idlePongFrames` has it, without parsing; nil for anything else.
    private static func idlePongSeconds(_ bytes: [UInt8]) -> Int? {
        // One digit: `maxSeconds` is under 10.
        guard bytes.count == idlePongHead.count + 1 + idlePongTail.count, bytes.starts(with: idlePongHead),
              bytes.suffix(idlePongTail.count).elementsEqual(idlePongTail) else { return nil }
        let digit = bytes[idlePongHead.count]
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
        let seconds = Int(digit - UInt8(ascii: "0"))
        return idlePongFrames.indices.contains(seconds) ? seconds : nil
    }
    private static let helloRequiredFrame = frame("hello_required", Empty())

    /// `{"body":{"jobId":"…"},"type":"…","v":1}`, written directly: every job sends four of these.
    private static func jobRefFrame(_ jobId: String, _ tail: [UInt8]) -> [UInt8] {
        var out = JSONWriter(capacity: 64)
        out.raw("{\"body\":{\"jobId\":")
        out.string(jobId)
        out.append(contentsOf: tail)
        return out.bytes
    }

    /// The `jobId` of a job-ref frame of this side's own encoding (`prefix` + id + `"` + `tail`),
    /// when the id needs no escapes; nil sends the frame through the decoder.
    private static func canonicalJobRef(_ bytes: [UInt8], tail: [UInt8]) -> String? {
        let prefix = jobRefPrefix
        let end = bytes.count - tail.count - 1
        guard end > prefix.count, bytes.starts(with: prefix), bytes[end] == UInt8(ascii: "\""),
              bytes[(end + 1)...].elementsEqual(tail) else { return nil }
        let id = bytes[prefix.count..<end]
        guard !id.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else { return nil }
        return String(decoding: id, as: UTF8.self)
    }

    private static let jobRefPrefix = Array(#"{"body":{"jobId":""#.utf8)
    private static let ackTail = Array(#"},"type":"ack","v":1}"#.utf8)
    private static let startedTail = Array(#"},"type":"started","v":1}"#.utf8)
    private static let resultAckTail = Array(#"},"type":"result_ack","v":1}"#.utf8)

    /// A `job` frame, written directly (the JobSpec's keys in sorted order).
    private static func jobFrame(_ job: JobSpec) -> [UInt8] {
        var out = JSONWriter(capacity: 512 + job.compose.utf8.count)
        out.raw("{\"body\":{\"compose\":"); out.string(job.compose)
        out.raw(",\"credentials\":[")
        for (index, auth) in job.credentials.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{\"password\":"); out.string(auth.password)
            out.raw(",\"registry\":"); out.string(auth.registry)
            out.raw(",\"username\":"); out.string(auth.username); out.raw("}")
        }
        out.raw("],\"env\":"); out.object(job.env)
        out.raw(",\"healthTimeoutSeconds\":"); out.int(job.healthTimeoutSeconds)
        out.raw(",\"id\":"); out.string(job.id)
        out.raw(",\"images\":"); out.object(job.images)
        out.raw(",\"kind\":"); out.string(job.kind.rawValue)
        out.raw(",\"pull\":"); out.bool(job.pull)
        out.raw(",\"stackId\":"); out.string(job.stackId)
        out.raw(",\"stackName\":"); out.string(job.stackName)
        out.raw("},\"type\":\"job\",\"v\":1}")
        return out.bytes
    }

    /// A `result` frame, written directly (keys in sorted order; `error` left out when there is none).
    private static func resultFrame(_ result: JobResult) -> [UInt8] {
        var out = JSONWriter(capacity: 256)
        out.raw("{\"body\":{")
        if let error = result.error {
            out.raw("\"error\":{\"code\":"); out.string(error.code)
            out.raw(",\"message\":"); out.string(error.message); out.raw("},")
        }
        out.raw("\"jobId\":"); out.string(result.jobId)
        out.raw(",\"services\":[")
        for (index, service) in result.services.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{\"containers\":"); out.int(service.containers)
            out.raw(",\"image\":"); out.string(service.image)
            out.raw(",\"imageId\":"); out.string(service.imageId)
            out.raw(",\"name\":"); out.string(service.name); out.raw("}")
        }
        out.raw("],\"state\":"); out.string(result.state.rawValue)
        out.raw("},\"type\":\"result\",\"v\":1}")
        return out.bytes
    }

    /// Encodes an agent message.
    public static func encode(_ message: AgentMessage) -> [UInt8] {
        switch message {
        case .hello(let hello): frame("hello", hello)
        case .ack(let id): jobRefFrame(id, ackTail)
        case .started(let id): jobRefFrame(id, startedTail)
        case .log(let chunk): frame("log", chunk)
        case .result(let result): resultFrame(result)
        case .ping: pingFrame
        case .bye: byeFrame
        }
    }

    /// Encodes a server message.
    public static func encode(_ message: ServerMessage) -> [UInt8] {
        switch message {
        case .welcome(let welcome): frame("welcome", welcome)
        case .job(let job): jobFrame(job)
        case .resultAck(let id): jobRefFrame(id, resultAckTail)
        case .cancel(let id): frame("cancel", JobRef(jobId: id))
        case .pong(let pending, let pingSeconds):
            switch (pending, pingSeconds) {
            case (0, nil): idlePongFrame
            case (0, let seconds?) where idlePongFrames.indices.contains(seconds): idlePongFrames[seconds]
            default: frame("pong", Pending(pending: pending, pingSeconds: pingSeconds))
            }
        case .helloRequired: helloRequiredFrame
        case .error(let code, let message): frame("error", ErrorBody(code: code, message: message))
        }
    }

    private enum FrameKey: String, CodingKey { case v, type, body }

    /// A frame's version (checked) and type, in the one pass that also decodes its body.
    private static func head(_ decoder: any Decoder) throws -> (KeyedDecodingContainer<FrameKey>, String) {
        let container = try decoder.container(keyedBy: FrameKey.self)
        let v = try container.decode(Int.self, forKey: .v)
        guard v == version else {
            throw WireError(code: "unsupported_version", message: "wire version \(v), this side speaks \(version)")
        }
        return (container, try container.decode(String.self, forKey: .type))
    }

    private static func body<Body: Decodable>(_ container: KeyedDecodingContainer<FrameKey>, _ type: Body.Type, _ name: String) throws -> Body {
        do {
            return try container.decode(Body.self, forKey: .body)
        } catch {
            throw WireError(code: "malformed", message: "bad \(name) body: \(error)")
        }
    }

    private struct AgentFrame: Decodable {
        var message: AgentMessage

        init(from decoder: any Decoder) throws {
            let (frame, type) = try WireCodec.head(decoder)
            switch type {
            case "hello": message = .hello(try WireCodec.body(frame, AgentHello.self, type))
            case "ack": message = .ack(jobId: try WireCodec.body(frame, JobRef.self, type).jobId)
            case "started": message = .started(jobId: try WireCodec.body(frame, JobRef.self, type).jobId)
            case "log": message = .log(try WireCodec.body(frame, LogChunk.self, type))
            case "result": message = .result(try WireCodec.body(frame, JobResult.self, type))
            case "ping": message = .ping
            case "bye": message = .bye
            default: throw WireError(code: "unknown_type", message: "unknown agent message type '\(type.prefix(64))'")
            }
        }
    }

    private struct ServerFrame: Decodable {
        var message: ServerMessage

        init(from decoder: any Decoder) throws {
            let (frame, type) = try WireCodec.head(decoder)
            switch type {
            case "welcome": message = .welcome(try WireCodec.body(frame, Welcome.self, type))
            case "job": message = .job(try WireCodec.body(frame, JobSpec.self, type))
            case "result_ack": message = .resultAck(jobId: try WireCodec.body(frame, JobRef.self, type).jobId)
            case "cancel": message = .cancel(jobId: try WireCodec.body(frame, JobRef.self, type).jobId)
            case "pong":
                let pong = try WireCodec.body(frame, Pending.self, type)
                message = .pong(pending: pong.pending, pingSeconds: pong.pingSeconds)
            case "hello_required": message = .helloRequired
            case "error":
                let error = try WireCodec.body(frame, ErrorBody.self, type)
                message = .error(code: error.code, message: error.message)
            default: throw WireError(code: "unknown_type", message: "unknown server message type '\(type.prefix(64))'")
            }
        }
    }

    /// Decodes a whole frame in one pass; every failure is a `WireError`.
    private static func decodeFrame<Frame: Decodable>(_ type: Frame.Type, _ bytes: [UInt8]) throws(WireError) -> Frame {
        guard bytes.count <= maxFrameBytes else {
            throw WireError(code: "too_large", message: "frame of \(bytes.count) bytes is over \(maxFrameBytes)")
        }
        do {
            return try decoder.decode(Frame.self, from: Data(bytes))
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(code: "malformed", message: "not a wire message: \(error)")
        }
    }

    /// Decodes a frame an agent sent.
    public static func decodeAgentMessage(_ bytes: [UInt8]) throws(WireError) -> AgentMessage {
        // This side's own encoding of a ping, byte for byte: no need to parse it.
        if bytes == pingFrame { return .ping }
        if let id = canonicalJobRef(bytes, tail: ackTail) { return .ack(jobId: id) }
        if let id = canonicalJobRef(bytes, tail: startedTail) { return .started(jobId: id) }
        if bytes.count <= maxFrameBytes, let result = CanonicalFrameReader.result(bytes) { return .result(result) }
        return try decodeFrame(AgentFrame.self, bytes).message
    }

    /// Decodes a frame the server sent.
    public static func decodeServerMessage(_ bytes: [UInt8]) throws(WireError) -> ServerMessage {
        if bytes == idlePongFrame { return .pong(pending: 0) }
        if let seconds = idlePongSeconds(bytes) { return .pong(pending: 0, pingSeconds: seconds) }
        if let id = canonicalJobRef(bytes, tail: resultAckTail) { return .resultAck(jobId: id) }
        if bytes.count <= maxFrameBytes, let job = CanonicalFrameReader.job(bytes) { return .job(job) }
        return try decodeFrame(ServerFrame.self, bytes).message
    }
}
