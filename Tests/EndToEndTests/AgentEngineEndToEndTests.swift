import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The agent process on the real engine: stacks side by side, and an engine that goes away and comes back.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct AgentEngineEndToEndTests {
    static func compose(_ image: String, port: Int) -> String {
        "services:\n  web:\n    image: \(image)\n    network_mode: host\n    environment:\n      PORT: \"\(port)\"\n"
    }

    static func date(_ job: [String: Any], _ key: String) -> Date? {
        (job[key] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
    }

    @Test func twoStacksDeploySideBySideAndOneStacksJobsKeepTheirOrder() async throws {
        let testEnv = try TestEnvironment.require()
        let work = try temporaryDirectory("wharf-e2e")
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                     "--data-dir", work.appendingPathComponent("agent").path,
                                                     "--docker-host", testEnv.dockerHost],
                                     log: work.appendingPathComponent("agent.log"))
        let key = work.appendingPathComponent("agent/agent.key").path
        #expect(await eventually { FileManager.default.fileExists(atPath: key) })
        #expect(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int == 0o600)
        let tag = UUID().uuidString.prefix(6).lowercased()
        let image = "\(testEnv.registry)/demo/side\(tag)"
        try testEnv.makeImage("\(image):v1", content: "side v1")
        try testEnv.makeImage("\(image):v2", content: "side v2")
        let ports = [freePort(), freePort()]
        var stackIds: [String] = []
        var firstJobs: [String] = []
        for (index, port) in ports.enumerated() {
            let (_, body) = try await api.call("POST", "/api/stacks", json: [
                "name": "side\(tag)-\(index)", "environmentId": environmentId, "compose": Self.compose("\(image):v1", port: port),
            ], expect: 201)
            stackIds.append((body["stack"] as! [String: Any])["id"] as! String)
            firstJobs.append((body["job"] as! [String: Any])["id"] as! String)
        }
        // Two more jobs for stack 0, queued behind its first: v2 then v1 again.
        let (_, second) = try await api.call("PUT", "/api/stacks/\(stackIds[0])", json: ["compose": Self.compose("\(image):v2", port: ports[0])], expect: 200)
        let (_, third) = try await api.call("PUT", "/api/stacks/\(stackIds[0])", json: ["compose": Self.compose("\(image):v1", port: ports[0])], expect: 200)
        let ordered = [firstJobs[0], (second["job"] as! [String: Any])["id"] as! String, (third["job"] as! [String: Any])["id"] as! String]

        var jobs: [String: [String: Any]] = [:]
        for id in firstJobs + ordered.dropFirst() {
            jobs[id] = try await api.finishedJob(id)
            #expect(jobs[id]?["state"] as? String == "succeeded", "\(jobs[id] ?? [:])\n\(agent.output.suffix(2000))")
        }
        // Side by side: the two stacks' first deploys overlapped in time.
        let a = jobs[firstJobs[0]]!, b = jobs[firstJobs[1]]!
        #expect(Self.date(a, "startedAt")! < Self.date(b, "finishedAt")! && Self.date(b, "startedAt")! < Self.date(a, "finishedAt")!)
        // In order: each of stack 0's jobs started after the one before it finished.
        for (earlier, later) in zip(ordered, ordered.dropFirst()) {
            #expect(Self.date(jobs[earlier]!, "finishedAt")! <= Self.date(jobs[later]!, "startedAt")!)
        }
        #expect(await eventually { await served(port: ports[0]) == "side v1" })
        #expect(await eventually { await served(port: ports[1]) == "side v1" })
        for id in stackIds { try await api.call("DELETE", "/api/stacks/\(id)", expect: 202) }
        #expect(await eventually(timeout: .seconds(60)) {
            let first = await served(port: ports[0])
            let second = await served(port: ports[1])
            return first == nil && second == nil
        })
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    @Test func anUnreachableEngineFailsTheJobAndTheAgentRecoversWhenItReturns() async throws {
        let testEnv = try TestEnvironment.require()
        let work = try temporaryDirectory("wharf-e2e")
        // The agent talks to the engine through a symlink that the test removes and puts back.
        let link = work.appendingPathComponent("docker.sock")
        let target = String(testEnv.dockerHost.dropFirst("unix://".count))
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                     "--data-dir", work.appendingPathComponent("agent").path,
                                                     "--docker-host", "unix://\(link.path)"],
                                     log: work.appendingPathComponent("agent.log"))
        let tag = UUID().uuidString.prefix(6).lowercased()
        let image = "\(testEnv.registry)/demo/lost\(tag)"
        try testEnv.makeImage("\(image):v1", content: "lost v1")
        let port = freePort()
        let (_, body) = try await api.call("POST", "/api/stacks", json: [
            "name": "lost\(tag)", "environmentId": environmentId, "compose": Self.compose("\(image):v1", port: port),
        ], expect: 201)
        let stackId = (body["stack"] as! [String: Any])["id"] as! String
        let failed = try await api.finishedJob((body["job"] as! [String: Any])["id"] as! String)
        #expect(failed["state"] as? String == "failed")
        #expect((failed["error"] as? [String: Any])?["code"] as? String == "engine_unreachable")

        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target)
        let (_, redeploy) = try await api.call("POST", "/api/stacks/\(stackId)/redeploy", json: ["pullImage": true], expect: 202)
        let recovered = try await api.finishedJob((redeploy["job"] as! [String: Any])["id"] as! String)
        #expect(recovered["state"] as? String == "succeeded", "\(recovered)\n\(agent.output.suffix(2000))")
        #expect(await eventually { await served(port: port) == "lost v1" })
        #expect(try await eventually {
            let (_, environment) = try await api.call("GET", "/api/environments/\(environmentId)", expect: 200)
            return (environment["environment"] as? [String: Any])?["status"] as? String == "connected"
        }, "the agent kept serving")
        try await api.call("DELETE", "/api/stacks/\(stackId)", expect: 202)
        #expect(await eventually(timeout: .seconds(60)) { await served(port: port) == nil })
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
