import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Real `wharf-server` and `wharf-agent` processes, killed with SIGKILL at the worst moments.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CrashRecoveryTests {
    static let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:${N:-0}\n"

    static func workDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-crash-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An environment no agent serves, a stack on it (its first deploy stays queued) and its
    /// webhook URL: the stack's id, its first job's id, the URL.
    static func stackWithWebhook(_ api: APIClient, environment name: String) async throws -> (stackId: String, jobId: String, url: String) {
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": name], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let (_, stackBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": Self.compose], expect: 201)
        let stackId = (stackBody["stack"] as! [String: Any])["id"] as! String
        let (_, hook) = try await api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        return (stackId, (stackBody["job"] as! [String: Any])["id"] as! String, hook["url"] as! String)
    }

    /// An environment `node-1` with a simulated `wharf-agent` (each deploy takes `simulate`, and is
    /// written to `runs` when it ends) and a stack `app` whose first deploy is on its way to it.
    static func nodeWithStack(_ api: APIClient, server: ServerProcess, work: URL, simulate: String) async throws
        -> (agent: ChildProcess, agentData: String, runs: URL, stackId: String, jobId: String) {
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node-1"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let runs = work.appendingPathComponent("runs.log")
        let agentData = work.appendingPathComponent("agent").path
        let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                     "--data-dir", agentData, "--simulate", simulate, "--simulate-journal", runs.path],
                                     log: work.appendingPathComponent("agent-1.log"))
        let (_, stackBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": compose,
        ], expect: 201)
        return (agent, agentData, runs, (stackBody["stack"] as! [String: Any])["id"] as! String,
                (stackBody["job"] as! [String: Any])["id"] as! String)
    }

    static func jobs(_ api: APIClient, stackId: String) async throws -> [[String: Any]] {
        let (_, body) = try await api.call("GET", "/api/jobs?stackId=\(stackId)&limit=1000", expect: 200)
        return body["jobs"] as? [[String: Any]] ?? []
    }

    @Test func serverKilledWith100QueuedJobsLosesNoneAndRunsEachOnceInOrder() async throws {
        let work = try Self.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        var api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node-1", "type": "agent"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let joinToken = created["joinToken"] as! String
        let runs = work.appendingPathComponent("runs.log")
        let agentData = work.appendingPathComponent("agent").path
        // Enrol, then stop the agent: the jobs queue up while it is away.
        var agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", joinToken, "--data-dir", agentData,
                                                     "--simulate", "0s", "--simulate-journal", runs.path],
                                     log: work.appendingPathComponent("agent-1.log"))
        #expect(await eventually {
            let (_, body) = try! await api.call("GET", "/api/environments/\(environmentId)", expect: 200)
            return (body["environment"] as? [String: Any])?["status"] as? String == "connected"
        })
        await agent.stop()

        let (_, stackBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": Self.compose, "env": ["N": "0"],
        ], expect: 201)
        let stackId = (stackBody["stack"] as! [String: Any])["id"] as! String
        for n in 1..<100 {
            try await api.call("PUT", "/api/stacks/\(stackId)", json: ["env": ["N": "\(n)"]], expect: 200)
        }
        var jobs = try await Self.jobs(api, stackId: stackId)
        #expect(jobs.count == 100)
        // None has run: queued, or sent to the agent that just left (it goes again on reconnect).
        #expect(jobs.allSatisfy { ["queued", "dispatched"].contains($0["state"] as? String ?? "") })

        server.child?.kill(SIGKILL)
        await server.child?.wait()
        api = try await server.start()
        agent = try ChildProcess("wharf-agent", ["--data-dir", agentData, "--simulate", "0s", "--simulate-journal", runs.path],
                                 log: work.appendingPathComponent("agent-2.log"))
        let allDone = await eventually(timeout: .seconds(120)) {
            (try? await Self.jobs(api, stackId: stackId))?.allSatisfy { $0["state"] as? String == "succeeded" } == true
        }
        #expect(allDone, "agent log: \(agent.output.suffix(2000))")
        jobs = try await Self.jobs(api, stackId: stackId)
        #expect(jobs.count == 100)
        let lines = try String(contentsOf: runs, encoding: .utf8).split(separator: "\n").map(String.init)
        // Exactly once each, in the order they were queued: the simulator records the env it ran with.
        #expect(lines.count == 100)
        #expect(lines == (0..<100).map { "deploy \(stackId) app N=\($0)" })
        let (_, stack) = try await api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect(((stack["stack"] as? [String: Any])?["env"] as? [String: String])?["N"] == "99")
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    @Test func agentKilledMidJobRunsItAgainAfterRestartAndReportsIt() async throws {
        let work = try Self.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let node = try await Self.nodeWithStack(api, server: server, work: work, simulate: "30s")
        let (runs, agentData, jobId) = (node.runs, node.agentData, node.jobId)
        var agent = node.agent
        // Received, acknowledged and started, but not finished.
        #expect(await eventually {
            let (_, body) = try! await api.call("GET", "/api/jobs/\(jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["state"] as? String == "running"
        })
        agent.kill(SIGKILL)
        await agent.wait()
        #expect(!FileManager.default.fileExists(atPath: runs.path))
        agent = try ChildProcess("wharf-agent", ["--data-dir", agentData, "--simulate", "0s", "--simulate-journal", runs.path],
                                 log: work.appendingPathComponent("agent-2.log"))
        #expect(await eventually(timeout: .seconds(30)) {
            let (_, body) = try! await api.call("GET", "/api/jobs/\(jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["state"] as? String == "succeeded"
        })
        let lines = try String(contentsOf: runs, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    @Test func anAgentEnrolledAgainDoesNotRunJobsHeldForItsEarlierKey() async throws {
        let work = try Self.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let node = try await Self.nodeWithStack(api, server: server, work: work, simulate: "600s")
        var agent = node.agent
        #expect(await eventually {
            let (_, body) = try! await api.call("GET", "/api/jobs/\(node.jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["state"] as? String == "running"
        })
        // The agent dies holding the job; its key is then revoked (the node is enrolled again, into
        // another environment), as the revoked agent's exit message says to do.
        agent.kill(SIGKILL)
        await agent.wait()
        for file in ["identity.json", "agent.key"] {
            try FileManager.default.removeItem(atPath: node.agentData + "/" + file)
        }
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node-2"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                 "--data-dir", node.agentData, "--simulate", "0s", "--simulate-journal", node.runs.path],
                                 log: work.appendingPathComponent("agent-2.log"))
        #expect(await eventually {
            let (_, body) = try! await api.call("GET", "/api/environments/\(environmentId)", expect: 200)
            return (body["environment"] as? [String: Any])?["status"] as? String == "connected"
        }, "agent log: \(agent.output.suffix(2000))")
        // A job held at start is scheduled before the agent connects, and a simulated one takes no time.
        #expect(!FileManager.default.fileExists(atPath: node.runs.path), "the old environment's job ran on the new enrolment")
        #expect(agent.output.contains("left out jobs held for this directory's earlier enrolment"), "\(agent.output.suffix(2000))")
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    @Test func sigtermAnswersACallThatWaitsForItsJobAtOnce() async throws {
        let work = try Self.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, jobId, hook) = try await Self.stackWithWebhook(api, environment: "away")
        // No agent: the call joins the queued first deploy and waits up to 50 s for it to end.
        let url = hook + "?wait=50"
        let waiting = Task { () async throws -> (Int, String?) in
            let (status, body, _) = try await WebhookAPITests.post(url)
            return (status, (body["job"] as? [String: Any])?["state"] as? String)
        }
        #expect(await eventually(timeout: .seconds(20)) {
            let (_, body) = try! await api.call("GET", "/api/jobs/\(jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["coalesced"] as? Int == 1
        })
        let stopped = ContinuousClock.now
        server.child?.kill(SIGTERM)
        // The stop ends the wait: the call gets its 202 with the job as it stands, and the server exits.
        let (status, state) = try await waiting.value
        #expect(ContinuousClock.now - stopped < .seconds(25), "the call was held until its wait ran out")
        #expect(status == 202 && state == "queued", "\(status) \(state ?? "-")")
        #expect(await server.child?.wait(timeout: .seconds(20)) == 0)
        try? FileManager.default.removeItem(at: work)
    }

    @Test func sigtermStopsTheServerCleanlyAndKeepsItsData() async throws {
        let work = try Self.workDirectory()
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        var api = try await server.start()
        let (stackId, _, hook) = try await Self.stackWithWebhook(api, environment: "kept")
        // Calls that only add to a queued job's count are counted in memory; a clean stop writes them.
        for call in 1...3 {
            let (status, body, _) = try await WebhookAPITests.post(hook)
            #expect(status == 202 && (body["job"] as? [String: Any])?["coalesced"] as? Int == call)
        }
        let firstToken = api.token
        server.child?.kill(SIGTERM)
        #expect(await server.child?.wait() == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: server.dataDirectory.appendingPathComponent("admin-token").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        api = try await server.start()
        #expect(api.token == firstToken)
        let (_, list) = try await api.call("GET", "/api/environments", expect: 200)
        #expect((list["environments"] as? [[String: Any]])?.first?["name"] as? String == "kept")
        #expect(try await Self.jobs(api, stackId: stackId).map { $0["coalesced"] as? Int } == [3])
        let endpoints = try JSONSerialization.jsonObject(with: Data(contentsOf: server.dataDirectory.appendingPathComponent("endpoints.json"))) as? [String: String]
        #expect(endpoints?["http"] == server.url)
        #expect(endpoints?["zmq"] == "tcp://127.0.0.1:\(server.zmqPort)")
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
