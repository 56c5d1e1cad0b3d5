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
        .job(JobSpec(id: "job_1", kind: .deploy, stackId: "stk_1", stackName: "app", compose: "services: {}\n",
                     env: ["TAG": "v2"], images: ["web": "demo/web:v2"], pull: true,
                     credentials: [RegistryAuth(registry: "127.0.0.1:5000", username: "u", password: "p")])),
        .resultAck(jobId: "job_1"), .cancel(jobId: "job_1"), .pong(pending: 0), .pong(pending: 7), .helloRequired,
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
}
