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

    private struct Head: Decodable {
        var v: Int
        var type: String
    }

    private struct Envelope<Body: Codable>: Codable {
        var v: Int
        var type: String
        var body: Body
    }

    private struct JobRef: Codable { var jobId: String }
    private struct Pending: Codable { var pending: Int }
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
    private static let byeFrame = frame("bye", Empty())
    private static let idlePongFrame = frame("pong", Pending(pending: 0))
    private static let helloRequiredFrame = frame("hello_required", Empty())

    /// Encodes an agent message.
    public static func encode(_ message: AgentMessage) -> [UInt8] {
        switch message {
        case .hello(let hello): frame("hello", hello)
        case .ack(let id): frame("ack", JobRef(jobId: id))
        case .started(let id): frame("started", JobRef(jobId: id))
        case .log(let chunk): frame("log", chunk)
        case .result(let result): frame("result", result)
        case .ping: pingFrame
        case .bye: byeFrame
        }
    }

    /// Encodes a server message.
    public static func encode(_ message: ServerMessage) -> [UInt8] {
        switch message {
        case .welcome(let welcome): frame("welcome", welcome)
        case .job(let job): frame("job", job)
        case .resultAck(let id): frame("result_ack", JobRef(jobId: id))
        case .cancel(let id): frame("cancel", JobRef(jobId: id))
        case .pong(let pending): pending == 0 ? idlePongFrame : frame("pong", Pending(pending: pending))
        case .helloRequired: helloRequiredFrame
        case .error(let code, let message): frame("error", ErrorBody(code: code, message: message))
        }
    }

    private static func head(_ bytes: [UInt8]) throws(WireError) -> (Head, Data) {
        guard bytes.count <= maxFrameBytes else {
            throw WireError(code: "too_large", message: "frame of \(bytes.count) bytes is over \(maxFrameBytes)")
        }
        let data = Data(bytes)
        let head: Head
        do {
            head = try decoder.decode(Head.self, from: data)
        } catch {
            throw WireError(code: "malformed", message: "not a wire message: \(error)")
        }
        guard head.v == version else {
            throw WireError(code: "unsupported_version", message: "wire version \(head.v), this side speaks \(version)")
        }
        return (head, data)
    }

    private static func body<Body: Codable>(_ type: Body.Type, _ data: Data, _ name: String) throws(WireError) -> Body {
        do {
            return try decoder.decode(Envelope<Body>.self, from: data).body
        } catch {
            throw WireError(code: "malformed", message: "bad \(name) body: \(error)")
        }
    }

    /// Decodes a frame an agent sent.
    public static func decodeAgentMessage(_ bytes: [UInt8]) throws(WireError) -> AgentMessage {
        // This side's own encoding of a ping, byte for byte: no need to parse it.
        if bytes == pingFrame { return .ping }
        let (head, data) = try head(bytes)
        switch head.type {
        case "hello": return .hello(try body(AgentHello.self, data, head.type))
        case "ack": return .ack(jobId: try body(JobRef.self, data, head.type).jobId)
        case "started": return .started(jobId: try body(JobRef.self, data, head.type).jobId)
        case "log": return .log(try body(LogChunk.self, data, head.type))
        case "result": return .result(try body(JobResult.self, data, head.type))
        case "ping": return .ping
        case "bye": return .bye
        default: throw WireError(code: "unknown_type", message: "unknown agent message type '\(head.type.prefix(64))'")
        }
    }

    /// Decodes a frame the server sent.
    public static func decodeServerMessage(_ bytes: [UInt8]) throws(WireError) -> ServerMessage {
        if bytes == idlePongFrame { return .pong(pending: 0) }
        let (head, data) = try head(bytes)
        switch head.type {
        case "welcome": return .welcome(try body(Welcome.self, data, head.type))
        case "job": return .job(try body(JobSpec.self, data, head.type))
        case "result_ack": return .resultAck(jobId: try body(JobRef.self, data, head.type).jobId)
        case "cancel": return .cancel(jobId: try body(JobRef.self, data, head.type).jobId)
        case "pong": return .pong(pending: try body(Pending.self, data, head.type).pending)
        case "hello_required": return .helloRequired
        case "error":
            let error = try body(ErrorBody.self, data, head.type)
            return .error(code: error.code, message: error.message)
        default: throw WireError(code: "unknown_type", message: "unknown server message type '\(head.type.prefix(64))'")
        }
    }
}
