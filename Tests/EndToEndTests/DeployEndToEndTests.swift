import Foundation
import Testing
import WharfTestSupport

/// The whole path with separate processes, as in production: wharf-server, a wharf-agent driving
/// real compose (v2 plugin and v1) on the private Docker engine, and images in a real registry.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct DeployEndToEndTests {
    @Test(arguments: ["docker compose", "docker-compose"])
    func webhookRedeploysTagsVariablesFailuresAndRemoval(composeCommand: String) async throws {
        let testEnv = try TestEnvironment.require()
        let work = try temporaryDirectory("wharf-e2e")
        let namespace = "e2e\(UUID().uuidString.prefix(8).lowercased())"
        let base = "\(testEnv.registry)/\(namespace)/web"
        try testEnv.makeImage("\(base):v1", content: "v1")
        try testEnv.makeImage("\(base):v2", content: "v2")
        try testEnv.makeImage("\(base):development", content: "development")
        try testEnv.makeImage("\(base):crash", content: "crash", mode: "crash")

        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        func cli(_ arguments: String...) throws -> (status: Int32, out: String, err: String) {
            try wharf(arguments, server: server.url, token: api.token!, directory: work)
        }

        // The seed's setup through the CLI: `wharf env add` prints the agent command, which is run as printed.
        let added = try cli("env", "add", "node")
        #expect(added.status == 0, "\(added.err)")
        let command = try #require(added.out.split(separator: "\n").first { $0.contains("wharf-agent --server") })
        var words = command.split(separator: " ").map(String.init)
        words = Array(words.drop { $0 != "wharf-agent" }.dropFirst())
        if let index = words.firstIndex(of: "--data-dir") { words[index + 1] = work.appendingPathComponent("agent").path }
        let agent = try ChildProcess("wharf-agent", words + ["--docker-host", testEnv.dockerHost, "--compose-command", composeCommand],
                                     log: work.appendingPathComponent("agent.log"))
        defer { agent.kill(SIGKILL) }
        let project = "web-\(namespace)"
        defer { _ = try? testEnv.docker(["rm", "-f"] + (try! testEnv.docker(["ps", "-aq", "--filter", "label=com.docker.compose.project=\(project)"])).split(separator: "\n").map(String.init)) }

        let port = freePort()
        let compose = """
            services:
              web:
                image: \(base):${SERVICE_TAG:-v1}
                network_mode: host
                environment:
                  PORT: "\(port)"
            """
        try compose.write(to: work.appendingPathComponent("compose.yml"), atomically: true, encoding: .utf8)
        let deployed = try cli("stack", "deploy", project, "--env-name", "node", "-f", "compose.yml", "--wait")
        #expect(deployed.status == 0, "wharf stack deploy: \(deployed.out)\n\(deployed.err)\n\(agent.output.suffix(3000))")
        #expect(await eventually { await served(port: port) == "v1" })
        let (_, stacks) = try await api.call("GET", "/api/stacks", expect: 200)
        let stackId = try #require((stacks["stacks"] as? [[String: Any]])?.first { $0["name"] as? String == project }?["id"] as? String)
        let environmentId = try #require((stacks["stacks"] as? [[String: Any]])?.first?["environmentId"] as? String)
        let (_, environment) = try await api.call("GET", "/api/environments/\(environmentId)", expect: 200)
        let agentInfo = (environment["environment"] as? [String: Any])?["agent"] as? [String: Any]
        #expect((agentInfo?["dockerVersion"] as? String)?.isEmpty == false)
        #expect((agentInfo?["composeVersion"] as? String)?.isEmpty == false)

        let enabled = try cli("webhook", "enable", project)
        #expect(enabled.status == 0)
        let url = enabled.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(url.hasPrefix(server.url + "/api/stacks/webhooks/") && !url.contains("\n"), "the URL alone on stdout")

        // The seed's example 1: a form post redeploys with the newest image of the same tag.
        try testEnv.makeImage("\(base):v1", content: "v1 rebuilt")
        let (formStatus, form) = try await post(url + "?wait=180", contentType: "application/x-www-form-urlencoded", body: Data())
        #expect(formStatus == 200, "\(form)")
        #expect(await eventually { await served(port: port) == "v1 rebuilt" })

        // The seed's example 2: ?tag=v2.
        let (tagStatus, tagged) = try await post(url + "?tag=v2&wait=180")
        #expect(tagStatus == 200, "\(tagged)")
        #expect(await eventually { await served(port: port) == "v2" })

        // The env example: ?SERVICE_TAG=development feeds ${SERVICE_TAG:-stable}-style images.
        let (envStatus, envBody) = try await post(url + "?SERVICE_TAG=development&wait=180")
        #expect(envStatus == 200, "\(envBody)")
        #expect(await eventually { await served(port: port) == "development" })

        // A tag that does not exist: pull_failed, and the running version is untouched.
        let containerBefore = try testEnv.docker(["ps", "-q", "--filter", "label=com.docker.compose.project=\(project)"])
        let (missingStatus, missing) = try await post(url + "?tag=nope&wait=180")
        #expect(missingStatus == 500)
        let missingJob = missing["job"] as? [String: Any]
        #expect(missingJob?["state"] as? String == "failed")
        #expect((missingJob?["error"] as? [String: Any])?["code"] as? String == "pull_failed")
        #expect(await eventually { await served(port: port) == "development" })
        #expect(try testEnv.docker(["ps", "-q", "--filter", "label=com.docker.compose.project=\(project)"]) == containerBefore)

        // An image whose container exits at once: rolled back, the old version serves again.
        let (crashStatus, crash) = try await post(url + "?tag=crash&wait=180")
        #expect(crashStatus == 500)
        let crashJob = crash["job"] as? [String: Any]
        #expect(crashJob?["state"] as? String == "rolled_back", "\(crash)")
        #expect(await eventually { await served(port: port) == "development" })
        let (_, stack) = try await api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect(((stack["stack"] as? [String: Any])?["env"] as? [String: String])?["SERVICE_TAG"] == "development",
                "a failed job leaves the stack as it was")
        let log = try await api.text("/api/jobs/\(crashJob?["id"] as? String ?? "")/log")
        #expect(log.contains("rolling back") || log.contains("roll"), "the job log tells the story: \(log.suffix(1500))")

        // Remove: compose down; the stack disappears when that job succeeds.
        let (_, removal) = try await api.call("DELETE", "/api/stacks/\(stackId)", expect: 202)
        let removed = try await api.finishedJob((removal["job"] as! [String: Any])["id"] as! String)
        #expect(removed["state"] as? String == "succeeded")
        #expect(await eventually { await served(port: port) == nil })
        #expect(try await api.call("GET", "/api/stacks/\(stackId)").0 == 404)

        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
