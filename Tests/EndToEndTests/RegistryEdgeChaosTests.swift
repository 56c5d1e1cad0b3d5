import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The seed's remaining scenarios with separate processes on the real engine: a real registry's
/// push notifications, an edge agent, and SIGKILL chaos.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct RegistryEdgeChaosTests {
    /// A wharf-server, an environment and an agent on the private engine.
    struct Deployment {
        let work: URL
        let server: ServerProcess
        let api: APIClient
        let environmentId: String
        let agentArguments: [String]
        var agent: ChildProcess

        static func start(_ testEnv: TestEnvironment, type: String = "agent", agentFlags: [String] = []) async throws -> Deployment {
            let work = try temporaryDirectory("wharf-e2e")
            let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
            let api = try await server.start()
            let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node", "type": type], expect: 201)
            let arguments = ["--data-dir", work.appendingPathComponent("agent").path, "--docker-host", testEnv.dockerHost] + agentFlags
            let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String] + arguments,
                                         log: work.appendingPathComponent("agent-0.log"))
            return Deployment(work: work, server: server, api: api,
                              environmentId: (created["environment"] as! [String: Any])["id"] as! String,
                              agentArguments: arguments, agent: agent)
        }

        mutating func restartAgent(_ n: Int) throws {
            agent = try ChildProcess("wharf-agent", agentArguments, log: work.appendingPathComponent("agent-\(n).log"))
        }

        func stack(_ name: String, image: String, port: Int) async throws -> (String, String) {
            let compose = "services:\n  web:\n    image: \(image)\n    network_mode: host\n    environment:\n      PORT: \"\(port)\"\n"
            let (_, body) = try await api.call("POST", "/api/stacks", json: ["name": name, "environmentId": environmentId, "compose": compose], expect: 201)
            return ((body["stack"] as! [String: Any])["id"] as! String, (body["job"] as! [String: Any])["id"] as! String)
        }

        func stop(_ testEnv: TestEnvironment, project: String) async {
            await agent.stop()
            await server.child?.stop()
            let ids = ((try? testEnv.docker(["ps", "-aq", "--filter", "label=com.docker.compose.project=\(project)"])) ?? "")
                .split(separator: "\n").map(String.init)
            if !ids.isEmpty { _ = try? testEnv.docker(["rm", "-f"] + ids) }
            try? FileManager.default.removeItem(at: work)
        }
    }

    @Test func aRegistryPushRedeploysTheStackWithNoOtherAction() async throws {
        let testEnv = try TestEnvironment.require()
        let deployment = try await Deployment.start(testEnv)
        let project = "pushed\(UUID().uuidString.prefix(6).lowercased())"
        let registryPort = freePort()
        let registry = "127.0.0.1:\(registryPort)"
        let storage = deployment.work.appendingPathComponent("registry")
        func config(notify url: String?) throws -> URL {
            var text = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \(storage.path)\nhttp:\n  addr: \(registry)\n"
            if let url {
                text += "notifications:\n  endpoints:\n    - name: wharf\n      url: \(url)\n      timeout: 5s\n      threshold: 3\n      backoff: 1s\n"
            }
            let file = deployment.work.appendingPathComponent(url == nil ? "registry-plain.yml" : "registry-notify.yml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            return file
        }
        func startRegistry(_ file: URL, _ n: Int) async throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
            process.arguments = ["serve", file.path]
            let logPath = deployment.work.appendingPathComponent("registry-\(n).log").path
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try #require(FileHandle(forWritingAtPath: logPath))
            process.standardOutput = log
            process.standardError = log
            try process.run()
            #expect(await eventually { await served(url: "http://\(registry)/v2/") != nil })
            return process
        }
        // v1 goes in before the stack exists; then the registry restarts with notifications to the stack's webhook.
        var registryProcess = try await startRegistry(try config(notify: nil), 1)
        defer { registryProcess.terminate() }
        let image = "\(registry)/demo/\(project)"
        try testEnv.makeImage("\(image):v1", content: "pushed v1")
        let port = freePort()
        let (stackId, firstJob) = try await deployment.stack(project, image: "\(image):v1", port: port)
        #expect(try await deployment.api.finishedJob(firstJob)["state"] as? String == "succeeded")
        #expect(await eventually { await served(port: port) == "pushed v1" })
        let (_, hook) = try await deployment.api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        registryProcess.terminate()
        registryProcess.waitUntilExit()
        registryProcess = try await startRegistry(try config(notify: hook["url"] as? String), 2)

        try testEnv.makeImage("\(image):v2", content: "pushed v2")
        #expect(await eventually(timeout: .seconds(120)) { await served(port: port) == "pushed v2" },
                "agent log: \(deployment.agent.output.suffix(2000))")
        // The container serves before the job's health wait ends; the job then succeeds.
        let api = deployment.api
        var latest: [String: Any]?
        #expect(try await eventually(timeout: .seconds(60)) {
            let (_, jobs) = try await api.call("GET", "/api/jobs?stackId=\(stackId)", expect: 200)
            latest = (jobs["jobs"] as? [[String: Any]])?.first
            return latest?["state"] as? String == "succeeded"
        })
        #expect((latest?["trigger"] as? [String: Any])?["source"] as? String == "registry")
        let (_, stack) = try await deployment.api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect(((stack["stack"] as? [String: Any])?["services"] as? [[String: Any]])?.first?["image"] as? String == "\(image):v2")
        await deployment.stop(testEnv, project: project)
    }

    @Test func anEdgeAgentDeploysAtItsCheckInsAndItsStacksRefuseWebhooks() async throws {
        let testEnv = try TestEnvironment.require()
        let deployment = try await Deployment.start(testEnv, type: "edge", agentFlags: ["--edge", "--checkin-interval", "2s"])
        let project = "edge\(UUID().uuidString.prefix(6).lowercased())"
        let image = "\(testEnv.registry)/demo/\(project)"
        try testEnv.makeImage("\(image):v1", content: "edge v1")
        let port = freePort()
        let (stackId, job) = try await deployment.stack(project, image: "\(image):v1", port: port)
        #expect(try await deployment.api.finishedJob(job)["state"] as? String == "succeeded", "\(deployment.agent.output.suffix(2000))")
        #expect(await eventually { await served(port: port) == "edge v1" })
        let (refused, body) = try await deployment.api.call("POST", "/api/stacks/\(stackId)/webhook")
        #expect(refused == 409)
        #expect((body["error"] as? [String: Any])?["code"] as? String == "edge_environment")
        // Between check-ins the edge environment is not connected.
        #expect(try await eventually(timeout: .seconds(30)) {
            let (_, environment) = try await deployment.api.call("GET", "/api/environments/\(deployment.environmentId)", expect: 200)
            return (environment["environment"] as? [String: Any])?["status"] as? String == "disconnected"
        })
        await deployment.stop(testEnv, project: project)
    }

    @Test(arguments: [false, true])
    func sigtermLetsTheRunningDeployFinishAndReportBeforeTheAgentExits(edge: Bool) async throws {
        let testEnv = try TestEnvironment.require()
        let deployment = try await Deployment.start(testEnv, type: edge ? "edge" : "agent",
                                                    agentFlags: edge ? ["--edge", "--checkin-interval", "2s"] : [])
        let project = "sigterm\(UUID().uuidString.prefix(6).lowercased())"
        let image = "\(testEnv.registry)/demo/\(project)"
        try testEnv.makeImage("\(image):v1", content: "term v1")
        // Its healthcheck passes after a second or two: the deploy is still running when the signal comes.
        try testEnv.makeImage("\(image):slow", content: "term slow", mode: "healthy")
        let port = freePort()
        let (stackId, firstJob) = try await deployment.stack(project, image: "\(image):v1", port: port)
        #expect(try await deployment.api.finishedJob(firstJob)["state"] as? String == "succeeded")
        let compose = "services:\n  web:\n    image: \(image):slow\n    network_mode: host\n    environment:\n      PORT: \"\(port)\"\n"
        let (_, edited) = try await deployment.api.call("PUT", "/api/stacks/\(stackId)", json: ["compose": compose], expect: 200)
        let jobId = (edited["job"] as! [String: Any])["id"] as! String
        #expect(try await eventually(timeout: .seconds(20)) {
            let (_, body) = try await deployment.api.call("GET", "/api/jobs/\(jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["state"] as? String == "running"
        })

        deployment.agent.kill(SIGTERM)
        let status = await deployment.agent.wait(timeout: .seconds(60))
        #expect(status == 0, "the agent exits cleanly once its job is done: \(deployment.agent.output.suffix(2000))")
        // Read at once, with no agent running: the result was sent and stored before the agent exited.
        let (_, body) = try await deployment.api.call("GET", "/api/jobs/\(jobId)", expect: 200)
        #expect((body["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(body): \(deployment.agent.output.suffix(2000))")
        #expect(await eventually(timeout: .seconds(20)) { await served(port: port) == "term slow" })
        #expect(deployment.agent.output.contains("stopping: waiting for running jobs to finish"))
        await deployment.stop(testEnv, project: project)
    }

    @Test func killingTheAgentMidDeployAndTheServerMidWebhooksLosesNothing() async throws {
        let testEnv = try TestEnvironment.require()
        var deployment = try await Deployment.start(testEnv)
        let project = "chaos\(UUID().uuidString.prefix(6).lowercased())"
        let image = "\(testEnv.registry)/demo/\(project)"
        for tag in ["v1", "v2", "v3"] { try testEnv.makeImage("\(image):\(tag)", content: "chaos \(tag)") }
        try testEnv.makeImage("\(image):slow", content: "chaos slow", mode: "healthy")
        let port = freePort()
        let (stackId, firstJob) = try await deployment.stack(project, image: "\(image):v1", port: port)
        #expect(try await deployment.api.finishedJob(firstJob)["state"] as? String == "succeeded")
        let (_, hook) = try await deployment.api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        let url = hook["url"] as! String

        // 1. SIGKILL the agent while a deploy runs; the restarted agent runs it again from the start.
        let (_, accepted) = try await post(url + "?tag=v2")
        let jobId = (accepted["job"] as! [String: Any])["id"] as! String
        #expect(try await eventually {
            let (_, body) = try await deployment.api.call("GET", "/api/jobs/\(jobId)", expect: 200)
            return (body["job"] as? [String: Any])?["state"] as? String == "running"
        })
        // The first run's first lines are on the server before the kill.
        #expect(try await eventually { try await deployment.api.text("/api/jobs/\(jobId)/log").contains("recording running images") })
        deployment.agent.kill(SIGKILL)
        await deployment.agent.wait()
        try deployment.restartAgent(1)
        #expect(try await deployment.api.finishedJob(jobId)["state"] as? String == "succeeded", "\(deployment.agent.output.suffix(2000))")
        #expect(await eventually { await served(port: port) == "chaos v2" })
        // The log keeps both runs: the second run's lines are not taken for the first's.
        let log = try await deployment.api.text("/api/jobs/\(jobId)/log")
        #expect(log.components(separatedBy: "recording running images").count - 1 == 2, "\(log)")

        // 2. SIGKILL the server while webhooks arrive; every accepted job still ends, and the newest version serves.
        var acceptedJobs: Set<String> = []
        var lastAcceptedTag: String?
        for n in 0..<12 {
            if n == 6 {
                deployment.server.child?.kill(SIGKILL)
                await deployment.server.child?.wait()
                _ = try await deployment.server.start()
            }
            let tag = n.isMultiple(of: 2) ? "v1" : "v3"
            if let (status, body) = try? await post(url + "?tag=\(tag)"), status == 202,
               let id = (body["job"] as? [String: Any])?["id"] as? String {
                acceptedJobs.insert(id)
                lastAcceptedTag = tag
            }
        }
        // Calls that arrive while a job is queued join it, so several calls may share one job.
        #expect(!acceptedJobs.isEmpty)
        let newest = try #require(lastAcceptedTag)
        let api = deployment.api
        #expect(try await eventually(timeout: .seconds(240)) {
            for id in acceptedJobs {
                let (_, body) = try await api.call("GET", "/api/jobs/\(id)", expect: 200)
                guard ["succeeded", "failed", "rolled_back"].contains((body["job"] as? [String: Any])?["state"] as? String ?? "") else { return false }
            }
            return true
        }, "every accepted job ends")
        let (_, jobs) = try await api.call("GET", "/api/jobs?stackId=\(stackId)&limit=1000", expect: 200)
        #expect((jobs["jobs"] as? [[String: Any]])?.allSatisfy { ["succeeded", "failed", "rolled_back"].contains($0["state"] as? String ?? "") } == true)
        #expect(await eventually(timeout: .seconds(90)) { await served(port: port) == "chaos \(newest)" },
                "the newest accepted trigger (\(newest)) serves")
        await deployment.stop(testEnv, project: project)
    }
}

/// What a URL serves now, or nil.
func served(url: String) async -> String? {
    guard let (data, response) = try? await URLSession.shared.data(from: URL(string: url)!),
          (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
    return String(decoding: data, as: UTF8.self)
}
