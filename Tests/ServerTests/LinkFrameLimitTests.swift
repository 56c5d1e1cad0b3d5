import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// Nothing on the link is larger than the other side's socket takes (`WireCodec.maxFrameBytes`):
/// such a frame drops the connection, and resent after the reconnect, drops it again forever.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LinkFrameLimitTests {
    /// Logs `lines` lines of `line` in one deploy, then succeeds.
    struct ChattyEngine: ContainerEngine {
        var line: String
        var lines: Int

        func info() async throws -> EngineInfo {
            EngineInfo(dockerVersion: "simulated", composeFlavour: .plugin, composeVersion: "simulated")
        }

        func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
            for index in 0..<lines { log("\(index) \(line)") }
            log("last line")
            return DeployOutcome(state: .succeeded, services: deployment.images.keys.sorted().map {
                ServiceOutcome(name: $0, image: deployment.images[$0]!, imageId: "sha256:simulated", containers: 1)
            })
        }

        func remove(stackId: String, projectName: String, compose: String, environment: [String: String],
                    log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
            DeployOutcome(state: .succeeded)
        }
    }

    @Test func aJobTooLargeForTheLinkFailsInsteadOfBeingResentForever() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        // Written straight to the store, past the API's limits: a stack of an older server, or
        // registries' credentials that add up. 5 MiB of env: its job cannot fit in a frame.
        let (_, big) = try await harness.stack("big", on: environment.id, env: ["BLOB": String(repeating: "x", count: 5 << 20)])
        let (_, small) = try await harness.stack("small", on: environment.id)
        let (_, agent) = try harness.agent(keys: pair)
        let ended = try await harness.dispatcher.waitForFinish(jobId: big.id, timeout: .seconds(30))
        #expect(ended.state == .failed)
        #expect(ended.error?.code == "job_too_large")
        #expect(try await harness.dispatcher.waitForFinish(jobId: small.id, timeout: .seconds(30)).state == .succeeded)
        agent.cancel()
        await harness.stop()
    }

    @Test func aJobsLogLargerThanAFrameReachesTheServerWhole() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        // 2,000 lines of control characters, each 6 bytes as JSON: about 12 MiB in one flush, three
        // frames' worth, while the text (about 2 MB) stays under the server's 2 MiB cap per job log.
        let engine = ChattyEngine(line: String(repeating: "\u{1}", count: 1000), lines: 1_999)
        let (_, job) = try await harness.stack("chatty", on: environment.id)
        let (_, agent) = try harness.agent(keys: pair, engine: engine)
        #expect(try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(60)).state == .succeeded)
        #expect(try await eventually(timeout: .seconds(30)) {
            try await harness.store.jobLog(jobId: job.id).hasSuffix("last line\n")
        }, "the log's chunks never reached the server")
        let log = try await harness.store.jobLog(jobId: job.id)
        #expect(log.split(separator: "\n").count == 2_000)
        agent.cancel()
        await harness.stop()
    }

    @Test func webhookCallsThatWouldMakeAJobTooLargeAreRefused() async throws {
        try await PlanAheadTests.withAPI { setup, client in
            let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:v1\n"
            // No agent: the first deploy stays queued, and webhook calls join it.
            let (status, created) = try await PlanAheadTests.call(client, .post, "/api/stacks", json: [
                "name": "app", "environmentId": setup.environmentId, "compose": compose, "env": [:] as [String: String]])
            #expect(status == .created)
            let stackId = try #require((created["stack"] as? [String: Any])?["id"] as? String)
            let jobId = try #require((created["job"] as? [String: Any])?["id"] as? String)
            let (_, hook) = try await PlanAheadTests.call(client, .post, "/api/stacks/\(stackId)/webhook")
            let path = String(try #require(hook["url"] as? String).dropFirst("http://wharf.test".count))

            let value = String(repeating: "v", count: 600 << 10)
            let (first, _) = try await PlanAheadTests.call(client, .post, path, contentType: "application/x-www-form-urlencoded",
                                                           body: "A=\(value)")
            #expect(first == .accepted)
            // Alone within the limit, but merged into the queued job with A it is not.
            let (second, refused) = try await PlanAheadTests.call(client, .post, path, contentType: "application/x-www-form-urlencoded",
                                                                  body: "B=\(value)")
            #expect(second == .unprocessableContent)
            #expect((refused["error"] as? [String: Any])?["code"] as? String == "stack_too_large")
            // The queued job is as the first call left it, and still fits in a frame.
            let spec = try #require(try await setup.harness.store.claimDispatch([
                DispatchRequest(environmentId: setup.environmentId, skip: [], capacity: 10)]).first?.jobs.first)
            #expect(spec.id == jobId)
            #expect(spec.env["B"] == nil && spec.env["A"] == value)
            #expect(WireCodec.encode(.job(spec)).count <= Dispatcher.maxJobFrameBytes)

            // A stack created with an env over the limit is refused at once.
            let (tooMany, body) = try await PlanAheadTests.call(client, .post, "/api/stacks", json: [
                "name": "many", "environmentId": setup.environmentId, "compose": compose,
                "env": Dictionary(uniqueKeysWithValues: (0...StackLimits.maxVariables).map { ("V\($0)", "1") })])
            #expect(tooMany == .unprocessableContent)
            #expect((body["error"] as? [String: Any])?["code"] as? String == "stack_too_large")
        }
    }
}
