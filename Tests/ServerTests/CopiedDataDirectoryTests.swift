import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `wharf-server` and two real `wharf-agent`s on one data directory, copied while the first
/// runs: the copy that connects last gets the environment, the first exits 78 and says why.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CopiedDataDirectoryTests {
    @Test func theEarlierAgentOfACopiedDataDirectoryExits78AndTheLaterRunsTheJobs() async throws {
        let work = try CrashRecoveryTests.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let node = try await CrashRecoveryTests.nodeWithStack(api, server: server, work: work, simulate: "0s")
        #expect(await eventually(timeout: .seconds(60)) { (try? await AgentLostTests.job(api, node.jobId))?["state"] as? String == "succeeded" },
                "agent log: \(node.agent.output.suffix(2000))")

        let copy = work.appendingPathComponent("agent-copy")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: node.agentData), to: copy)
        let runsCopy = work.appendingPathComponent("runs-copy.log")
        let second = try ChildProcess("wharf-agent", ["--data-dir", copy.path, "--simulate", "0s", "--simulate-journal", runsCopy.path],
                                      log: work.appendingPathComponent("agent-copy.log"))
        let status = await node.agent.wait(timeout: .seconds(60))
        #expect(status == 78, "first agent's log: \(node.agent.output.suffix(2000))")
        #expect(node.agent.output.contains("another agent with this key connected to the server"))

        let (_, redeploy) = try await api.call("POST", "/api/stacks/\(node.stackId)/redeploy", json: [:], expect: 202)
        let nextId = try #require((redeploy["job"] as? [String: Any])?["id"] as? String)
        #expect(await eventually(timeout: .seconds(60)) { (try? await AgentLostTests.job(api, nextId))?["state"] as? String == "succeeded" },
                "copy's log: \(second.output.suffix(2000))")
        let runs = (try? String(contentsOf: node.runs, encoding: .utf8))?.split(separator: "\n") ?? []
        let copyRuns = (try? String(contentsOf: runsCopy, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(runs.count == 1 && copyRuns.count == 1, "first: \(runs), copy: \(copyRuns)")
        await node.agent.stop()
        await second.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
