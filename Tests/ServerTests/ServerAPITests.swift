import Foundation
import Testing
import WharfTestSupport
@testable import WharfServer
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The management API against a real `wharf-server` process: every contract error code, and secrets kept secret.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ServerAPITests {
    static func errorCode(_ body: [String: Any]) -> String? { (body["error"] as? [String: Any])?["code"] as? String }

    @Test func environmentsStacksRegistriesAndTheirErrors() async throws {
        let work = try temporaryDirectory("wharf-api")
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let anonymous = APIClient(base: server.url)

        // Public and private routes.
        #expect(try await anonymous.call("GET", "/api/health").0 == 200)
        // The agent install script is public and carries this server's public URL.
        let script = try await anonymous.text("/install-agent.sh")
        #expect(script.hasPrefix("#!/bin/sh"))
        #expect(script.contains(server.url) && !script.contains("@WHARF_SERVER@"))
        let index = try await anonymous.text("/")
        #expect(index.contains("<html"), "the web UI is served at /")
        let (status401, body401) = try await anonymous.call("GET", "/api/environments")
        #expect(status401 == 401 && Self.errorCode(body401) == "unauthorized")
        #expect(try await APIClient(base: server.url, token: "wrong").call("GET", "/api/stacks").0 == 401)

        // Environments: create, name_taken, get, join tokens, enrolment with single-use tokens.
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "prod-1", "type": "agent"], expect: 201)
        let environment = created["environment"] as! [String: Any]
        let environmentId = environment["id"] as! String
        #expect(environment["status"] as? String == "pending")
        #expect(environment["agent"] is NSNull, "absent values are null, as the contract writes them")
        #expect(environment["lastSeenAt"] is NSNull)
        #expect(try await api.call("POST", "/api/environments", json: ["name": "bad\u{0C}name"]).0 == 400)
        let (taken, takenBody) = try await api.call("POST", "/api/environments", json: ["name": "prod-1"])
        #expect(taken == 409 && Self.errorCode(takenBody) == "name_taken")
        let (badType, _) = try await api.call("POST", "/api/environments", json: ["name": "x", "type": "cloud"])
        #expect(badType == 400)
        let (missing, missingBody) = try await api.call("GET", "/api/environments/env_nope")
        #expect(missing == 404 && Self.errorCode(missingBody) == "not_found")
        let (_, joined) = try await api.call("POST", "/api/environments/\(environmentId)/join-token", expect: 201)
        let token = joined["joinToken"] as! String
        let key = "rq:A[4:M0#Bn(eMx=D7)z8tIb-9r2]n>K=ePzzo%"  // a well-formed Z85 key
        let (_, enrolled) = try await anonymous.call("POST", "/api/agents/enrol",
                                                     json: ["joinToken": token, "publicKey": key, "hostname": "h", "version": "1"], expect: 200)
        #expect(enrolled["environmentId"] as? String == environmentId)
        #expect((enrolled["serverPublicKey"] as? String)?.count == 40)
        #expect(enrolled["endpoint"] as? String == "tcp://127.0.0.1:\(server.zmqPort)")
        let (reused, reusedBody) = try await anonymous.call("POST", "/api/agents/enrol",
                                                            json: ["joinToken": token, "publicKey": key, "hostname": "h", "version": "1"])
        #expect(reused == 401 && Self.errorCode(reusedBody) == "unauthorized", "a join token works once")
        #expect(try await anonymous.call("POST", "/api/agents/enrol", json: ["joinToken": "join_bogus", "publicKey": key]).0 == 401)
        #expect(try await anonymous.call("POST", "/api/agents/enrol", json: ["joinToken": token, "publicKey": "short"]).0 == 400)

        // Stacks: invalid names and compose files are refused before anything is stored.
        let (badName, badNameBody) = try await api.call("POST", "/api/stacks", json: ["name": "Bad Name", "environmentId": environmentId, "compose": "services: {}"])
        #expect(badName == 400 && Self.errorCode(badNameBody) == "invalid_name")
        let (noImage, noImageBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    build: .\n"])
        #expect(noImage == 422)
        #expect((noImageBody["error"] as? [String: Any])?["message"] as? String ?? "" != "")
        #expect(((noImageBody["error"] as? [String: Any])?["message"] as? String)?.contains("web") == true)
        let (required, requiredBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: nginx:${TAG:?set TAG}\n"])
        #expect(required == 422)
        #expect(((requiredBody["error"] as? [String: Any])?["message"] as? String)?.contains("TAG") == true)
        let (nul, nulBody) = try await api.call("POST", "/api/compose/render", json: [
            "compose": "services:\n  web:\n    image: nginx\n", "env": ["A": "x\u{0}y"]])
        #expect(nul == 422 && Self.errorCode(nulBody) == "invalid_variable", "render answers 422 on any error (contract)")
        let (renderBadName, renderBadNameBody) = try await api.call("POST", "/api/compose/render", json: [
            "compose": "services:\n  web:\n    image: nginx\n", "env": ["A-B": "x"]])
        #expect(renderBadName == 422 && Self.errorCode(renderBadNameBody) == "invalid_variable")
        let (reserved, reservedBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: nginx\n", "env": ["LD_PRELOAD": "/tmp/x.so"]])
        #expect(reserved == 400 && Self.errorCode(reservedBody) == "invalid_variable", "\(reservedBody)")
        let (renderReserved, renderReservedBody) = try await api.call("POST", "/api/compose/render", json: [
            "compose": "services:\n  web:\n    image: nginx\n", "env": ["COMPOSE_FILE": "/etc/other.yml"]])
        #expect(renderReserved == 422 && Self.errorCode(renderReservedBody) == "invalid_variable",
                "render refuses what a stack refuses: \(renderReservedBody)")
        let (noServices, _) = try await api.call("POST", "/api/stacks", json: ["name": "app", "environmentId": environmentId, "compose": "version: '3'\n"])
        #expect(noServices == 422)
        let (_, stacksAfterErrors) = try await api.call("GET", "/api/stacks", expect: 200)
        #expect((stacksAfterErrors["stacks"] as? [Any])?.isEmpty == true)
        let (_, rendered) = try await api.call("POST", "/api/compose/render", json: [
            "compose": "services:\n  web:\n    image: nginx:${TAG:-1.27}\n", "env": ["TAG": "1.28"]], expect: 200)
        #expect((rendered["services"] as? [[String: String]])?.first?["image"] == "nginx:1.28")
        #expect((rendered["config"] as? String)?.contains("nginx:1.28") == true)

        let (_, stack) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: nginx:1.27\n"], expect: 201)
        let stackId = (stack["stack"] as! [String: Any])["id"] as! String
        #expect((stack["stack"] as! [String: Any])["webhook"] is NSNull)
        #expect((stack["job"] as! [String: Any])["error"] is NSNull)
        let (dupStack, dupBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: nginx:1.27\n"])
        #expect(dupStack == 409 && Self.errorCode(dupBody) == "name_taken")
        let (inUse, inUseBody) = try await api.call("DELETE", "/api/environments/\(environmentId)")
        #expect(inUse == 409 && Self.errorCode(inUseBody) == "environment_in_use")
        let (_, filtered) = try await api.call("GET", "/api/stacks?environmentId=\(environmentId)", expect: 200)
        #expect((filtered["stacks"] as? [[String: Any]])?.map { $0["id"] as? String } == [stackId])
        let (badState, _) = try await api.call("GET", "/api/jobs?state=exploded")
        #expect(badState == 400)
        // A body that does not decode says which field is wrong, and how.
        for (method, path, json, says) in [
            ("POST", "/api/environments", ["name": "x", "type": "swarm"] as [String: Any], "`type` must be `agent` or `edge`, not 'swarm'"),
            ("POST", "/api/stacks", ["name": NSNull(), "environmentId": environmentId, "compose": "services: {}"], "`name` must not be null"),
            ("POST", "/api/registries", ["url": "r.example.com", "username": 5, "password": "p"], "`username` must be a string"),
        ] {
            let (status, body) = try await api.call(method, path, json: json)
            let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(status == 400 && Self.errorCode(body) == "invalid_json" && message.contains(says), "\(path): \(body)")
        }
        let (listStatus, listBody) = try await api.call("POST", "/api/environments", json: [["name": "x"]])
        #expect(listStatus == 400 && ((listBody["error"] as? [String: Any])?["message"] as? String)?.contains("must be an object") == true, "\(listBody)")
        // An empty filter (a script's unset variable) is refused, not answered "none".
        for path in ["/api/stacks?environmentId=", "/api/jobs?stackId="] {
            let (status, body) = try await api.call("GET", path)
            #expect(status == 400 && Self.errorCode(body) == "invalid_query", "\(path): \(body)")
        }

        // Registries: the password is never returned, nor logged.
        let password = "s3cret-\(UUID().uuidString)"
        let (_, registry) = try await api.call("POST", "/api/registries",
                                               json: ["url": "registry.example.com:5000", "username": "ci", "password": password], expect: 201)
        let registryId = (registry["registry"] as! [String: Any])["id"] as! String
        let (_, registries) = try await api.call("GET", "/api/registries", expect: 200)
        #expect(!"\(registries)".contains(password))
        #expect(!"\(registry)".contains(password))
        #expect(try await api.call("POST", "/api/registries", json: ["url": "not a host!", "username": "a", "password": "b"]).0 == 400)
        // Stored as images name the registry: `docker login`'s key for Docker Hub is docker.io, and
        // a host in capitals is the same registry.
        let (_, hub) = try await api.call("POST", "/api/registries",
                                          json: ["url": "https://index.docker.io/v1/", "username": "ci", "password": password], expect: 201)
        #expect((hub["registry"] as? [String: Any])?["url"] as? String == "docker.io")
        #expect(try await api.call("POST", "/api/registries", json: ["url": "Registry.Example.com:5000", "username": "a", "password": "b"]).0 == 409)
        try await api.call("DELETE", "/api/registries/\(registryId)", expect: 204)
        #expect(try await api.call("DELETE", "/api/registries/\(registryId)").0 == 404)

        // Metrics.
        let metrics = try await api.text("/metrics")
        #expect(metrics.contains("wharf_jobs{state=\"queued\"} 1"))
        #expect(metrics.contains("wharf_agents_connected 0"))
        #expect(metrics.contains("wharf_webhook_calls_total"))

        await server.child?.stop()
        let log = server.child?.output ?? ""
        #expect(!log.contains(password), "registry passwords never reach the log")
        #expect(!log.contains(api.token!), "the admin token never reaches the log")
        #expect(log.contains("admin-token"), "the server logs where the admin token is")
        try? FileManager.default.removeItem(at: work)
    }

    @Test func webhookCallsOverTheRateGet429WithRetryAfter() async throws {
        let work = try temporaryDirectory("wharf-rate")
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "n"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let (_, stack) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: nginx:1\n"], expect: 201)
        let (_, hook) = try await api.call("POST", "/api/stacks/\((stack["stack"] as! [String: Any])["id"] as! String)/webhook", expect: 201)
        let url = URL(string: hook["url"] as! String)!
        // 120 calls at once: well over the burst of 40, however slow the machine is.
        let responses = await withTaskGroup(of: HTTPURLResponse?.self) { group in
            for _ in 0..<120 {
                group.addTask {
                    var request = URLRequest(url: url)
                    request.httpMethod = "POST"
                    return try? await URLSession.shared.data(for: request).1 as? HTTPURLResponse
                }
            }
            var all: [HTTPURLResponse] = []
            for await response in group { if let response { all.append(response) } }
            return all
        }
        #expect(responses.count == 120)
        #expect(responses.allSatisfy { $0.statusCode == 202 || $0.statusCode == 429 })
        let limited = responses.first { $0.statusCode == 429 }
        let response = try #require(limited, "120 calls at once go over the per-token rate")
        #expect(Int(response.value(forHTTPHeaderField: "Retry-After") ?? "") ?? 0 >= 1)
        let metrics = try await api.text("/metrics")
        let limitedCount = responses.filter { $0.statusCode == 429 }.count
        #expect(metrics.contains("wharf_webhook_calls_total{outcome=\"rate_limited\"} \(limitedCount)"))
        #expect(metrics.contains("wharf_webhook_calls_total{outcome=\"coalesced\"}"))
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    @Test func anAgentsDeathShowsDisconnectedWithin15Seconds() async throws {
        let work = try temporaryDirectory("wharf-death")
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "n"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                     "--data-dir", work.appendingPathComponent("agent").path, "--simulate", "0s"],
                                     log: work.appendingPathComponent("agent.log"))
        func status() async throws -> String? {
            let (_, body) = try await api.call("GET", "/api/environments/\(environmentId)", expect: 200)
            return (body["environment"] as? [String: Any])?["status"] as? String
        }
        #expect(try await eventually { try await status() == "connected" })
        agent.kill(SIGKILL)
        await agent.wait()
        let killed = ContinuousClock.now
        #expect(try await eventually(timeout: .seconds(15)) { try await status() == "disconnected" })
        #expect(ContinuousClock.now - killed < .seconds(15))
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    /// The health check Docker and load balancers ask answers 503 when the store cannot be used:
    /// here its database file is moved away under the running server (a volume removed, a restore).
    @Test func healthIsDegradedWhenTheDatabaseFileIsGone() async throws {
        let work = try temporaryDirectory("wharf-health")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("server")
        let server = ServerProcess(dataDirectory: data)
        _ = try await server.start()
        let anonymous = APIClient(base: server.url)
        let (okStatus, ok) = try await anonymous.call("GET", "/api/health")
        #expect(okStatus == 200 && ok["status"] as? String == "ok" && ok["reason"] == nil)

        let aside = work.appendingPathComponent("moved")
        try FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
        for name in ["wharf.sqlite", "wharf.sqlite-wal", "wharf.sqlite-shm"]
        where FileManager.default.fileExists(atPath: data.appendingPathComponent(name).path) {
            try FileManager.default.moveItem(at: data.appendingPathComponent(name), to: aside.appendingPathComponent(name))
        }
        let (status, body) = try await anonymous.call("GET", "/api/health")
        #expect(status == 503, "\(body)")
        #expect(body["status"] as? String == "degraded")
        #expect((body["reason"] as? String)?.contains("database") == true, "\(body)")
        #expect(body["version"] is String)

        // A new file in its place (a restore under the running server) is not the file the server writes to either.
        try FileManager.default.copyItem(at: aside.appendingPathComponent("wharf.sqlite"), to: data.appendingPathComponent("wharf.sqlite"))
        #expect(try await anonymous.call("GET", "/api/health").0 == 503)
        // A load balancer probing every second does not fill the log: the problem is logged once.
        for _ in 0..<5 { #expect(try await anonymous.call("GET", "/api/health").0 == 503) }
        await server.child?.stop()
        let output = server.child?.output ?? ""
        #expect(output.components(separatedBy: "health check: the store cannot be used").count - 1 == 1, "\(output)")
    }
}
