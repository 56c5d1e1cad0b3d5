import Foundation
import Testing
@testable import WharfProtocol

/// The shortcut for results and jobs (`CanonicalFrameReader`): it reads every frame as the encoder
/// writes it exactly as `JSONDecoder` does, and gives up on any other form, which the decoder then reads.
struct CanonicalFrameReaderTests {
    static let tricky = ["", "plain", "demo/web:v1", "quote \" and \\ back", "line\nbreak\r\t\u{8}\u{c}", "\u{0}\u{1}\u{1f}\u{7f}",
                         "ünïcödé ✓ 🚢", "\u{2028}", "</script>"]

    static func results() -> [JobResult] {
        var results: [JobResult] = []
        for (index, text) in tricky.enumerated() {
            let states: [FinalJobState] = [.succeeded, .failed, .rolledBack]
            results.append(JobResult(
                jobId: "job_\(text)", state: states[index % 3],
                error: index % 2 == 0 ? nil : JobError(code: "pull_failed", message: text),
                services: (0..<(index % 4)).map {
                    ServiceResult(name: "s\($0)\(text)", image: "127.0.0.1:5000/\(text):v\($0)", imageId: "sha256:\(text)",
                                  containers: [0, 1, -1, 123_456_789_012][$0])
                }))
        }
        return results
    }

    @Test(arguments: results())
    func readsWhatTheEncoderWritesAsTheDecoderDoes(_ result: JobResult) throws {
        let frame = WireCodec.encode(AgentMessage.result(result))
        let read = try #require(CanonicalFrameReader.result(frame), "the encoder's own form is read by the shortcut")
        #expect(read == result)
        struct Envelope: Decodable { var v: Int; var type: String; var body: JobResult }
        #expect(try JSONDecoder().decode(Envelope.self, from: Data(frame)).body == read)
        #expect(try WireCodec.decodeAgentMessage(frame) == .result(result))
    }

    static let result = JobResult(jobId: "job_1", state: .failed, error: JobError(code: "unhealthy", message: "web 🚢 exited"),
                                  services: [ServiceResult(name: "web", image: "demo/web:2", imageId: "sha256:1", containers: 2)])

    @Test(arguments: [
        #"{ "body": {"error":{"code":"unhealthy","message":"web 🚢 exited"},"jobId":"job_1","services":[{"containers":2,"image":"demo/web:2","imageId":"sha256:1","name":"web"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"v":1,"type":"result","body":{"error":{"code":"unhealthy","message":"web 🚢 exited"},"jobId":"job_1","services":[{"containers":2,"image":"demo/web:2","imageId":"sha256:1","name":"web"}],"state":"failed"}}"#,
        #"{"body":{"jobId":"job_1","error":{"code":"unhealthy","message":"web 🚢 exited"},"services":[{"containers":2,"image":"demo/web:2","imageId":"sha256:1","name":"web"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"error":{"code":"unhealthy","message":"web \ud83d\udea2 exited"},"jobId":"job_1","services":[{"containers":2,"image":"demo\/web:2","imageId":"sha256:1","name":"web"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"error":{"code":"unhealthy","message":"web 🚢 exited"},"jobId":"job_1","services":[{"containers":2.0,"image":"demo/web:2","imageId":"sha256:1","name":"web"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"error":{"code":"unhealthy","message":"web 🚢 exited"},"jobId":"job_1","services":[{"containers":2,"image":"demo/web:2","imageId":"sha256:1","name":"web","extra":1}],"state":"failed"},"type":"result","v":1}"#,
    ])
    func anotherFormIsLeftToTheDecoder(_ text: String) throws {
        let frame = Array(text.utf8)
        #expect(CanonicalFrameReader.result(frame) == nil)
        #expect(try WireCodec.decodeAgentMessage(frame) == .result(Self.result))
    }

    @Test(arguments: [
        #"{"body":{"jobId":"job_1","services":[{"containers":01,"image":"a","imageId":"b","name":"c"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"jobId":"job_1","services":[],"state":"gone"},"type":"result","v":1}"#,
        #"{"body":{"jobId":"job_1","services":[],"state":"failed"},"type":"result","v":1"#,
        #"{"body":{"jobId":"job_1","services":[],"state":"failed"},"type":"result","v":1}}"#,
        "{\"body\":{\"jobId\":\"job\u{1}\",\"services\":[],\"state\":\"failed\"},\"type\":\"result\",\"v\":1}",
        #"{"body":{"jobId":"job_1","services":[{"containers":1234567890123456789012,"image":"a","imageId":"b","name":"c"}],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"jobId":"job\u+041","services":[],"state":"failed"},"type":"result","v":1}"#,
        #"{"body":{"jobId":"job\u00g1","services":[],"state":"failed"},"type":"result","v":1}"#,
    ])
    func whatIsNotAResultIsRefusedAsBefore(_ text: String) {
        let frame = Array(text.utf8)
        #expect(CanonicalFrameReader.result(frame) == nil)
        #expect(throws: WireError.self) { try WireCodec.decodeAgentMessage(frame) }
    }

    @Test func escapesOfTheBasicPlaneAreReadAsTheDecoderReadsThem() throws {
        let frame = Array(#"{"body":{"jobId":"job_\u00e9\u0041\u2028\u0000","services":[],"state":"succeeded"},"type":"result","v":1}"#.utf8)
        let read = try #require(CanonicalFrameReader.result(frame))
        #expect(read.jobId == "job_\u{e9}A\u{2028}\u{0}")
        #expect(try WireCodec.decodeAgentMessage(frame) == .result(read))
        struct Envelope: Decodable { var body: JobResult }
        #expect(try JSONDecoder().decode(Envelope.self, from: Data(frame)).body == read)
    }

    static func jobs() -> [JobSpec] {
        tricky.enumerated().map { index, text in
            JobSpec(id: "job_\(text)", kind: index % 2 == 0 ? .deploy : .remove, stackId: "stk_\(text)", stackName: text,
                    compose: "services:\n  web: {image: \"\(text)\"}\n",
                    env: index == 0 ? [:] : ["A": text, "b/c": "1", "K\(text)": "x", "Z": ""],
                    images: index == 1 ? [:] : ["web": "127.0.0.1:5000/\(text):v1", "db": "postgres:16"], pull: index % 3 != 0,
                    credentials: (0..<(index % 3)).map { RegistryAuth(registry: "r\($0)/\(text)", username: text, password: "p\"w\($0)") },
                    healthTimeoutSeconds: [60, 0, 300, -1][index % 4])
        }
    }

    @Test(arguments: jobs())
    func readsTheJobsTheServerWritesAsTheDecoderDoes(_ job: JobSpec) throws {
        let frame = WireCodec.encode(ServerMessage.job(job))
        let read = try #require(CanonicalFrameReader.job(frame), "the encoder's own form is read by the shortcut")
        #expect(read == job)
        struct Envelope: Decodable { var v: Int; var type: String; var body: JobSpec }
        #expect(try JSONDecoder().decode(Envelope.self, from: Data(frame)).body == read)
        #expect(try WireCodec.decodeServerMessage(frame) == .job(job))
    }

    static let job = JobSpec(id: "job_1", kind: .deploy, stackId: "stk_1", stackName: "app", compose: "services: {}\n",
                             env: ["A": "1", "B": "2"], images: ["web": "demo/web:2"], pull: true)

    @Test(arguments: [
        #"{"body":{"compose":"services: {}\n","credentials":[],"env":{"B":"2","A":"1"},"healthTimeoutSeconds":60,"id":"job_1","images":{"web":"demo/web:2"},"kind":"deploy","pull":true,"stackId":"stk_1","stackName":"app"},"type":"job","v":1}"#,
        #"{"v":1,"type":"job","body":{"compose":"services: {}\n","credentials":[],"env":{"A":"1","B":"2"},"healthTimeoutSeconds":60,"id":"job_1","images":{"web":"demo/web:2"},"kind":"deploy","pull":true,"stackId":"stk_1","stackName":"app"}}"#,
        #"{"body":{"compose":"services: {}\n","credentials":[],"env":{"A":"1","B":"2"},"healthTimeoutSeconds":60, "id":"job_1","images":{"web":"demo/web:2"},"kind":"deploy","pull":true,"stackId":"stk_1","stackName":"app"},"type":"job","v":1}"#,
    ])
    func aJobInAnotherFormIsLeftToTheDecoder(_ text: String) throws {
        let frame = Array(text.utf8)
        #expect(CanonicalFrameReader.job(frame) == nil)
        #expect(try WireCodec.decodeServerMessage(frame) == .job(Self.job))
    }

    @Test(arguments: [
        // A key twice in a map: out of order for the shortcut; the decoder decides as it always did.
        #"{"body":{"compose":"","credentials":[],"env":{"A":"1","A":"2"},"healthTimeoutSeconds":60,"id":"j","images":{},"kind":"deploy","pull":true,"stackId":"s","stackName":"n"},"type":"job","v":1}"#,
        #"{"body":{"compose":"","credentials":[],"env":{},"healthTimeoutSeconds":60,"id":"j","images":{},"kind":"deploy","pull":1,"stackId":"s","stackName":"n"},"type":"job","v":1}"#,
        #"{"body":{"compose":"","credentials":[],"env":{},"healthTimeoutSeconds":60,"id":"j","images":{},"kind":"upgrade","pull":true,"stackId":"s","stackName":"n"},"type":"job","v":1}"#,
    ])
    func aJobTheShortcutDoesNotTakeGoesToTheDecoder(_ text: String) {
        let frame = Array(text.utf8)
        #expect(CanonicalFrameReader.job(frame) == nil)
        let decoded = try? WireCodec.decodeServerMessage(frame)
        struct Envelope: Decodable { var body: JobSpec }
        let reference = try? JSONDecoder().decode(Envelope.self, from: Data(frame)).body
        #expect(decoded == reference.map { .job($0) })
    }

    @Test func aFrameThatIsNotValidUTF8IsRefused() {
        var frame = Array(#"{"body":{"jobId":"job_X","services":[],"state":"failed"},"type":"result","v":1}"#.utf8)
        frame[frame.firstIndex(of: UInt8(ascii: "X"))!] = 0xFF
        #expect(CanonicalFrameReader.result(frame) == nil)
        #expect(throws: WireError.self) { try WireCodec.decodeAgentMessage(frame) }
    }
}
