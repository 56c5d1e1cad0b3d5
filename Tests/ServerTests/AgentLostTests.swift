import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `wharf-server` (`--agent-lost-after 3s`) and a real `wharf-agent` killed mid-job.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct AgentLostTests {
    static func job(_ api: APIClient, _ id: String) async throws -> [String: Any] {
        let (_, body) = try await api.call("GET", "/api/jobs/\(id)", expect: 200)
        return body["job"] as? [String: Any] ?? [:]
    }

    @Test func runningJobOfAnAgentThatStaysAwayFailsAgentLostAndTheStackDeploysAgain() async throws {
        let work = try CrashRecoveryTests.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        server.environment = ["WHARF_AGENT_LOST_AFTER": "3s"]
        let api = try await server.start()
        let node = try await CrashRecoveryTests.nodeWithStack(api, server: server, work: work, simulate: "600s")
        let (runs, agentData, stackId, lostId) = (node.runs, node.agentData, node.stackId, node.jobId)
        var agent = node.agent
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.job(api, lostId))?["state"] as? String == "running" },
                "agent log: \(agent.output.suffix(2000))")

        // The agent dies without a result and does not come back.
        agent.kill(SIGKILL)
        await agent.wait()
        #expect(await eventually(timeout: .seconds(90)) { (try? await Self.job(api, lostId))?["state"] as? String == "failed" },
                "server log: \(server.child?.output.suffix(2000) ?? "")")
        let lost = try await Self.job(api, lostId)
        let error = lost["error"] as? [String: Any]
        #expect(error?["code"] as? String == "agent_lost")
        #expect((error?["message"] as? String)?.contains("last seen at") == true, "\(error ?? [:])")
        #expect(lost["finishedAt"] is String)
        let (_, stack) = try await api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect((stack["stack"] as? [String: Any])?["status"] as? String == "failed", "a first deploy that never ran: nothing runs")

        // A new deploy is taken, and waits for the agent.
        let (_, redeploy) = try await api.call("POST", "/api/stacks/\(stackId)/redeploy", json: [:], expect: 202)
        let nextId = try #require((redeploy["job"] as? [String: Any])?["id"] as? String)
        #expect(nextId != lostId)
        #expect(try await Self.job(api, nextId)["state"] as? String == "queued")

        // The agent comes back holding the job cut short. The server, which ended it, tells the
        // agent not to run it (before the welcome the agent waits for to start its journal's
        // jobs), and the new deploy runs alone.
        agent = try ChildProcess("wharf-agent", ["--data-dir", agentData, "--simulate", "0s", "--simulate-journal", runs.path],
                                 log: work.appendingPathComponent("agent-2.log"))
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.job(api, nextId))?["state"] as? String == "succeeded" },
                "agent log: \(agent.output.suffix(2000))")
        let lines = try String(contentsOf: runs, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1, "only the new deploy ran: \(lines)")
        #expect(agent.output.contains("not running a job the server ended"), "\(agent.output.suffix(2000))")
        let journal = URL(fileURLWithPath: agentData).appendingPathComponent("jobs/\(lostId).job").path
        #expect(!FileManager.default.fileExists(atPath: journal), "the lost job's spec is gone from the agent's journal")
        let after = try await Self.job(api, lostId)
        #expect(after["state"] as? String == "failed")
        #expect((after["error"] as? [String: Any])?["code"] as? String == "agent_lost")
        let (_, finalStack) = try await api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect((finalStack["stack"] as? [String: Any])?["status"] as? String == "running")
        #expect((finalStack["stack"] as? [String: Any])?["lastJobId"] as? String == nextId)
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
