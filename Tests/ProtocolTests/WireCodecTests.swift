import Foundation
import Testing
import WharfProtocol

/// The wire format: every message survives a round trip, and the precomputed frames are exactly
/// what the encoder writes and what the decoders accept.
struct WireCodecTests {
    static let result = JobResult(jobId: "job_1", state: .rolledBack, error: JobError(code: "unhealthy", message: "web exited"),
                                  services: [ServiceResult(name: "web", image: "demo/web:2", imageId: "sha256:1", containers: 1)])

    @Test(arguments: [
        AgentMessage.hello(AgentHello(agentVersion: "0.1.0", hostname: "node-1", dockerVersion: "28.2.2", composeFlavour: "plugin",
                                      composeVersion: "2.40.3", edge: true, holding: ["job_1"], results: [result])),
        .ack(jobId: "job_1"), .started(jobId: "job_1"), .log(LogChunk(jobId: "job_1", seq: 3, lines: ["pulling", "ünïcode"])),
        .result(result), .ping, .bye,
    ])
    func agentMessagesRoundTrip(_ message: AgentMessage) throws {
        #expect(try WireCodec.decodeAgentMessage(WireCodec.encode(message)) == message)
    }

    @Test(arguments: [
        ServerMessage.welcome(Welcome(environmentId: "env_1", serverVersion: "0.1.0", pending: 2)),
        .welcome(Welcome(environmentId: "env_1", serverVersion: "0.1.0", pending: 0, pingSeconds: 10)),
        .job(JobSpec(id: "job_1", kind: .deploy, stackId: "stk_1", stackName: "app", compose: "services: {}\n",
                     env: ["TAG": "v2"], images: ["web": "demo/web:v2"], pull: true,
                     credentials: [RegistryAuth(registry: "127.0.0.1:5000", username: "u", password: "p")])),
        .resultAck(jobId: "job_1"), .cancel(jobId: "job_1"), .pong(pending: 0), .pong(pending: 7),
        .pong(pending: 0, pingSeconds: 3), .pong(pending: 0, pingSeconds: 60), .pong(pending: 7, pingSeconds: 10), .helloRequired,
        .error(code: "malformed", message: "bad"),
    ])
    func serverMessagesRoundTrip(_ message: ServerMessage) throws {
        #expect(try WireCodec.decodeServerMessage(WireCodec.encode(message)) == message)
    }

    @Test func thePrecomputedFramesAreTheWireFormat() {
        #expect(WireCodec.encode(AgentMessage.ping) == Array(#"{"body":{},"type":"ping","v":1}"#.utf8))
        #expect(WireCodec.encode(AgentMessage.bye) == Array(#"{"body":{},"type":"bye","v":1}"#.utf8))
        #expect(WireCodec.encode(ServerMessage.pong(pending: 0)) == Array(#"{"body":{"pending":0},"type":"pong","v":1}"#.utf8))
        #expect(WireCodec.encode(ServerMessage.pong(pending: 3)) == Array(#"{"body":{"pending":3},"type":"pong","v":1}"#.utf8))
        #expect(WireCodec.encode(ServerMessage.helloRequired) == Array(#"{"body":{},"type":"hello_required","v":1}"#.utf8))
        #expect(WireCodec.encode(ServerMessage.pong(pending: 0, pingSeconds: 4))
            == Array(#"{"body":{"pending":0,"pingSeconds":4},"type":"pong","v":1}"#.utf8))
        #expect(WireCodec.encode(ServerMessage.pong(pending: 0, pingSeconds: 61))
            == Array(#"{"body":{"pending":0,"pingSeconds":61},"type":"pong","v":1}"#.utf8))
    }

    /// An older agent reads a pong or a welcome that asks for an interval as before (the key is
    /// ignored); a pong written another way, or with a number the fast path does not know, still reads.
    @Test func theAskedPingIntervalReadsEitherWay() throws {
        struct OldPending: Decodable { var pending: Int }
        struct OldFrame: Decodable { var v: Int; var type: String; var body: OldPending }
        let asked = WireCodec.encode(ServerMessage.pong(pending: 0, pingSeconds: 10))
        #expect(try JSONDecoder().decode(OldFrame.self, from: Data(asked)).body.pending == 0)
        for (text, seconds) in [(#"{"v":1,"type":"pong","body":{"pingSeconds":7,"pending":0}}"#, 7),
                                (#"{"body":{"pending":0,"pingSeconds":120},"type":"pong","v":1}"#, 120)] {
            #expect(try WireCodec.decodeServerMessage(Array(text.utf8)) == .pong(pending: 0, pingSeconds: seconds))
        }
        // An interval this side cannot read (a later server's, or not a JSON integer) counts as none:
        // the pong or welcome still reads.
        #expect(try WireCodec.decodeServerMessage(Array(#"{"body":{"pending":0,"pingSeconds":07},"type":"pong","v":1}"#.utf8))
            == .pong(pending: 0))
        #expect(throws: WireError.self) {  // not JSON at all
            try WireCodec.decodeServerMessage(Array(#"{"body":{"pending":0,"pingSeconds":1x},"type":"pong","v":1}"#.utf8))
        }
        #expect(try WireCodec.decodeServerMessage(Array(#"{"body":{"pending":2,"pingSeconds":2.5},"type":"pong","v":1}"#.utf8))
            == .pong(pending: 2))
        let welcome = #"{"body":{"environmentId":"env_1","pending":0,"pingSeconds":"10","serverVersion":"9"},"type":"welcome","v":1}"#
        #expect(try WireCodec.decodeServerMessage(Array(welcome.utf8))
            == .welcome(Welcome(environmentId: "env_1", serverVersion: "9", pending: 0)))
    }

    @Test func thePingPolicyScalesWithTheFleet() {
        #expect(PingPolicy.seconds(agents: 0, perSecond: 1_000) == nil)
        #expect(PingPolicy.seconds(agents: 2_000, perSecond: 1_000) == nil)
        #expect(PingPolicy.seconds(agents: 2_001, perSecond: 1_000) == 3)
        #expect(PingPolicy.seconds(agents: 3_001, perSecond: 1_000) == 4)
        #expect(PingPolicy.seconds(agents: 10_000, perSecond: 1_000) == 4)
        #expect(PingPolicy.seconds(agents: 10_000, perSecond: 0) == nil)
        // As a server keeps asking: longer at once, shorter only a tenth below the threshold.
        #expect(PingPolicy.seconds(agents: 3_001, perSecond: 1_000, current: 3) == 4)
        #expect(PingPolicy.seconds(agents: 2_999, perSecond: 1_000, current: 4) == 4)
        #expect(PingPolicy.seconds(agents: 2_800, perSecond: 1_000, current: 4) == 4)
        #expect(PingPolicy.seconds(agents: 2_700, perSecond: 1_000, current: 4) == 3)
        #expect(PingPolicy.seconds(agents: 1_900, perSecond: 1_000, current: 3) == 3)
        #expect(PingPolicy.seconds(agents: 1_800, perSecond: 1_000, current: 3) == nil)
        #expect(PingPolicy.seconds(agents: 0, perSecond: 1_000, current: 4) == nil)
        #expect(PingPolicy.seconds(agents: 5_000, perSecond: 1_000, current: nil) == 4)
        // An agent takes the longer of its own and the asked interval, within 1–4 s, and waits
        // five of them.
        #expect(PingPolicy.interval(.seconds(2), asked: nil) == .seconds(2))
        #expect(PingPolicy.interval(.seconds(2), asked: 3) == .seconds(3))
        #expect(PingPolicy.interval(.seconds(5), asked: 3) == .seconds(5))
        #expect(PingPolicy.interval(.seconds(2), asked: 3_600) == .seconds(4))
        #expect(PingPolicy.interval(.milliseconds(100), asked: 0) == .seconds(1))
        #expect(PingPolicy.timeout(.seconds(10), asked: nil) == .seconds(10))
        #expect(PingPolicy.timeout(.seconds(10), asked: 4) == .seconds(20))
        #expect(PingPolicy.timeout(.seconds(10), asked: 60) == .seconds(20))
        #expect(PingPolicy.timeout(.seconds(30), asked: 3) == .seconds(30))
        // The server waits as long, but never past 12 s: the contract's "disconnected within 15 s".
        #expect(PingPolicy.serverTimeout(.seconds(10), asked: nil) == .seconds(10))
        #expect(PingPolicy.serverTimeout(.seconds(10), asked: 3) == .seconds(12))
        #expect(PingPolicy.serverTimeout(.seconds(10), asked: 4) == .seconds(12))
        #expect(PingPolicy.serverTimeout(.seconds(1), asked: 4, cap: .seconds(2)) == .seconds(2))
        #expect(PingPolicy.serverTimeout(.seconds(1), asked: 1) == .seconds(5))
        #expect(PingPolicy.serverTimeout(.seconds(60), asked: 4) == .seconds(60))
    }

    @Test func aPingWrittenAnotherWayIsStillAPing() throws {
        let spaced = Array(#"{ "type": "ping", "v": 1, "body": {} }"#.utf8)
        #expect(spaced != WireCodec.encode(AgentMessage.ping))
        #expect(try WireCodec.decodeAgentMessage(spaced) == .ping)
        let pong = Array(#"{"body":{"pending":0},"type":"pong","v":1}"#.utf8)
        #expect(try WireCodec.decodeServerMessage(pong) == .pong(pending: 0))
    }

    @Test func anotherVersionOrTypeIsRefused() {
        #expect(throws: WireError.self) { try WireCodec.decodeAgentMessage(Array(#"{"body":{},"type":"ping","v":99}"#.utf8)) }
        #expect(throws: WireError.self) { try WireCodec.decodeAgentMessage(Array(#"{"body":{},"type":"pong","v":1}"#.utf8)) }
        #expect(throws: WireError.self) { try WireCodec.decodeServerMessage(WireCodec.encode(AgentMessage.ping)) }
    }

    static let trickyIds = ["job_0123456789abcdef0123", "job/with/slashes", "quote\"back\\slash", "line\nbreak\u{1}", "ünï ✓"]

    struct Envelope<Body: Encodable>: Encodable { var v = 1; var type: String; var body: Body }
    struct JobRef: Encodable { var jobId: String }

    static func generic<Body: Encodable>(_ type: String, _ body: Body) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(Envelope(type: type, body: body)))
    }

    @Test(arguments: trickyIds)
    func handWrittenFramesAreTheEncodersBytes(_ text: String) throws {
        #expect(WireCodec.encode(AgentMessage.ack(jobId: text)) == (try Self.generic("ack", JobRef(jobId: text))))
        #expect(WireCodec.encode(AgentMessage.started(jobId: text)) == (try Self.generic("started", JobRef(jobId: text))))
        #expect(WireCodec.encode(ServerMessage.resultAck(jobId: text)) == (try Self.generic("result_ack", JobRef(jobId: text))))
        let job = JobSpec(id: text, kind: .remove, stackId: "stk_\(text)", stackName: text, compose: "services:\n  web: {image: \"\(text)\"}\n",
                          env: ["A": text, "b/c": "1", text: "x"], images: ["web": "127.0.0.1:5000/\(text):v1"], pull: false,
                          credentials: [RegistryAuth(registry: "r/\(text)", username: text, password: "p\"w"),
                                        RegistryAuth(registry: "b", username: "u", password: "")],
                          healthTimeoutSeconds: 17)
        #expect(WireCodec.encode(ServerMessage.job(job)) == (try Self.generic("job", job)))
        let empty = JobSpec(id: text, kind: .deploy, stackId: "s", stackName: "n", compose: "", env: [:], images: [:], pull: true)
        #expect(WireCodec.encode(ServerMessage.job(empty)) == (try Self.generic("job", empty)))
        let result = JobResult(jobId: text, state: .rolledBack, error: JobError(code: text, message: "m/\(text)"),
                               services: [ServiceResult(name: text, image: "r/\(text):1", imageId: "sha256:\(text)", containers: -3),
                                          ServiceResult(name: "b", image: "c", imageId: "", containers: 12)])
        #expect(WireCodec.encode(AgentMessage.result(result)) == (try Self.generic("result", result)))
        let bare = JobResult(jobId: text, state: .succeeded)
        #expect(WireCodec.encode(AgentMessage.result(bare)) == (try Self.generic("result", bare)))
        // Whether read by the shortcut or by the decoder, the same message comes back.
        #expect(try WireCodec.decodeAgentMessage(WireCodec.encode(AgentMessage.ack(jobId: text))) == .ack(jobId: text))
        #expect(try WireCodec.decodeAgentMessage(WireCodec.encode(AgentMessage.started(jobId: text))) == .started(jobId: text))
        #expect(try WireCodec.decodeServerMessage(WireCodec.encode(ServerMessage.resultAck(jobId: text))) == .resultAck(jobId: text))
        #expect(try WireCodec.decodeServerMessage(WireCodec.encode(ServerMessage.job(job))) == .job(job))
    }

    @Test func refusalsSayWhy() {
        func code(_ frame: String, server: Bool = false) -> String? {
            do {
                if server { _ = try WireCodec.decodeServerMessage(Array(frame.utf8)) } else { _ = try WireCodec.decodeAgentMessage(Array(frame.utf8)) }
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(#"{"body":{"jobId":"j"},"type":"ack","v":2}"#) == "unsupported_version")
        #expect(code(#"{"body":{},"type":"teleport","v":1}"#) == "unknown_type")
        #expect(code(#"{"body":{"jobId":"j"},"type":"teleport","v":1}"#, server: true) == "unknown_type")
        #expect(code(#"{"body":{"jobId":7},"type":"ack","v":1}"#) == "malformed")
        #expect(code(#"{"body":{"jobId":"j"},"type":"ack"}"#) == "malformed")
        #expect(code(#"{"body":{"jobId":"j"},"type":"result","v":1}"#) == "malformed")
        #expect(code("not json") == "malformed")
        #expect(code(#"{"body":{"jobId":"j"#) == "malformed")
        #expect(code(String(repeating: " ", count: WireCodec.maxFrameBytes + 1)) == "too_large")
        #expect(code(#"{"body":{"jobId":"j"},"type":"result_ack","v":1}"#) == "unknown_type", "a server message from an agent")
    }
}
