import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The webhook lifecycle and public trigger against a real `wharf-server` process and a simulated agent.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct WebhookAPITests {
    static func post(_ url: String, contentType: String? = nil, body: Data? = nil) async throws -> (Int, [String: Any], HTTPURLResponse) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return (http.statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:], http)
    }

    @Test func enableTriggerCoalesceDisableRotateAndEdgeRefusal() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-hook-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:${SERVICE_TAG:-stable}\n  db:\n    image: 127.0.0.1:5000/demo/db:1\n  app:\n    image: myorg/app:1\n"
        let (_, stackBody) = try await api.call("POST", "/api/stacks", json: ["name": "app", "environmentId": environmentId, "compose": compose], expect: 201)
        let stackId = (stackBody["stack"] as! [String: Any])["id"] as! String
        let firstJob = (stackBody["job"] as! [String: Any])["id"] as! String

        // Enable: a URL under the public URL with a UUID v4 token.
        let (_, hook) = try await api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        let url = hook["url"] as! String
        #expect(url.hasPrefix(server.url + "/api/stacks/webhooks/"))
        #expect(url.split(separator: "/").last!.count == 36)
        // Enabling again answers the same URL: the one pasted into a registry or CI keeps working.
        let (again, sameHook) = try await api.call("POST", "/api/stacks/\(stackId)/webhook")
        #expect(again == 200 && sameHook["url"] as? String == url, "\(sameHook)")

        // No agent: these calls join the queued first deploy. A browser form post, then ?SERVICE_TAG, then ?tag for db only via a registry push.
        let (formStatus, formBody, formResponse) = try await Self.post(url, contentType: "application/x-www-form-urlencoded", body: Data())
        #expect(formStatus == 202)
        #expect(formResponse.value(forHTTPHeaderField: "Location") == "/api/jobs/\(firstJob)")
        #expect((formBody["job"] as? [String: Any])?["coalesced"] as? Int == 1)
        let (envStatus, envBody, _) = try await Self.post(url + "?SERVICE_TAG=development")
        #expect(envStatus == 202)
        let plan = ((envBody["job"] as? [String: Any])?["plan"] as? [String: Any])?["services"] as? [[String: String]]
        #expect(plan?.first { $0["name"] == "web" }?["image"] == "127.0.0.1:5000/demo/web:development")
        #expect((envBody["job"] as? [String: Any])?["coalesced"] as? Int == 2)
        let envelope = #"{"events":[{"id":"evt-1","action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"demo/db","tag":"2","url":"http://127.0.0.1:5000/v2/demo/db/manifests/sha256:abc"},"request":{"host":"127.0.0.1:5000"}}]}"#
        let (pushStatus, pushBody, _) = try await Self.post(url, contentType: "application/vnd.docker.distribution.events.v1+json", body: Data(envelope.utf8))
        #expect(pushStatus == 202)
        let merged = ((pushBody["job"] as? [String: Any])?["plan"] as? [String: Any])?["services"] as? [[String: String]]
        #expect(merged?.first { $0["name"] == "db" }?["image"] == "127.0.0.1:5000/demo/db:2")
        #expect(merged?.first { $0["name"] == "web" }?["image"] == "127.0.0.1:5000/demo/web:development", "both pushes are deployed by one job")
        let dockerHub = #"{"push_data":{"tag":"2","pusher":"ci"},"repository":{"repo_name":"myorg/app","name":"app","namespace":"myorg"}}"#
        let (hubStatus, hubBody, _) = try await Self.post(url, contentType: "application/json", body: Data(dockerHub.utf8))
        #expect(hubStatus == 202)
        let hubPlan = ((hubBody["job"] as? [String: Any])?["plan"] as? [String: Any])?["services"] as? [[String: String]]
        #expect(hubPlan?.first { $0["name"] == "app" }?["image"] == "myorg/app:2", "a Docker Hub push retags only its repository")
        #expect(hubPlan?.first { $0["name"] == "db" }?["image"] == "127.0.0.1:5000/demo/db:2")
        let hubParams = ((hubBody["job"] as? [String: Any])?["trigger"] as? [String: Any])?["params"] as? [String: String]
        #expect(hubParams?["image"]?.contains("demo/db:2") == true && hubParams?["image"]?.contains("myorg/app:2") == true,
                "the job's parameters name both pushes it deploys: \(String(describing: hubParams))")
        // A call without a pull joins a job that pulls (the calls before asked for one): the job's
        // parameters must not say it skips the pull.
        let (noPullStatus, noPullBody, _) = try await Self.post(url + "?pullimage=false")
        #expect(noPullStatus == 202)
        let noPullParams = ((noPullBody["job"] as? [String: Any])?["trigger"] as? [String: Any])?["params"] as? [String: String]
        #expect(noPullParams?["pullimage"] == nil, "\(String(describing: noPullParams))")
        let (repeatStatus, repeatBody, _) = try await Self.post(url, contentType: "application/vnd.docker.distribution.events.v1+json", body: Data(envelope.utf8))
        #expect(repeatStatus == 200)
        #expect(repeatBody["ignored"] != nil)
        let pull = #"{"events":[{"id":"evt-2","action":"pull","target":{"repository":"demo/db","tag":"2"},"request":{"host":"127.0.0.1:5000"}}]}"#
        let (pullStatus, pullBody, _) = try await Self.post(url, contentType: "application/vnd.docker.distribution.events.v2+json", body: Data(pull.utf8))
        #expect(pullStatus == 200)
        #expect(pullBody["ignored"] != nil)

        // Bad input is refused with a clear error, and no job is made.
        let (badTag, badBody, _) = try await Self.post(url + "?tag=-nope")
        #expect(badTag == 400)
        #expect((badBody["error"] as? [String: Any])?["code"] as? String == "invalid_tag")
        #expect(try await Self.post(url + "?1BAD=x").0 == 400)
        #expect(try await Self.post(url, contentType: "application/json", body: Data("{nope".utf8)).0 == 400)
        #expect(try await Self.post(url, contentType: "application/json", body: Data(repeating: 32, count: 2 << 20)).0 == 413)
        let (_, jobs) = try await api.call("GET", "/api/jobs?stackId=\(stackId)", expect: 200)
        #expect((jobs["jobs"] as? [Any])?.count == 1)

        // wait=N with no agent to run the job: after N seconds the call answers as without wait
        // (202, the job as it stands, its Location), and the job goes on.
        let waitStarted = ContinuousClock.now
        let (timedOut, timedOutBody, timedOutResponse) = try await Self.post(url + "?wait=1")
        #expect(timedOut == 202, "\(timedOutBody)")
        #expect(ContinuousClock.now - waitStarted >= .seconds(1), "answered before its wait was over")
        #expect(((timedOutBody["job"] as? [String: Any])?["state"] as? String) == "queued")
        #expect(timedOutBody["statusUrl"] as? String == "/api/jobs/\(firstJob)")
        #expect(timedOutResponse.value(forHTTPHeaderField: "Location") == "/api/jobs/\(firstJob)")

        // An agent runs the merged job; the trigger's variables then become the stack's.
        let agent = try ChildProcess("wharf-agent", ["--server", server.url, "--join", created["joinToken"] as! String,
                                                     "--data-dir", work.appendingPathComponent("agent").path, "--simulate", "0s"],
                                     log: work.appendingPathComponent("agent.log"))
        let (waited, waitedBody, _) = try await Self.post(url + "?wait=30")
        #expect(waited == 200, "wait=N answers when the job ends: \(waitedBody)")
        #expect((waitedBody["job"] as? [String: Any])?["state"] as? String == "succeeded")
        let (_, config) = try await api.call("GET", "/api/stacks/\(stackId)/config", expect: 200)
        #expect((config["services"] as? [[String: String]])?.first { $0["name"] == "web" }?["image"] == "127.0.0.1:5000/demo/web:development")

        // A trigger's tag becomes part of the stack: later deploys and the config keep it, until a variable changes that image.
        #expect(try await Self.post(url + "?tag=v9&wait=30").0 == 200)
        let (_, redeploy) = try await api.call("POST", "/api/stacks/\(stackId)/redeploy", json: ["pullImage": false], expect: 202)
        let redeployPlan = ((redeploy["job"] as? [String: Any])?["plan"] as? [String: Any])?["services"] as? [[String: String]]
        #expect(redeployPlan?.first { $0["name"] == "web" }?["image"] == "127.0.0.1:5000/demo/web:v9")
        #expect(redeployPlan?.first { $0["name"] == "db" }?["image"] == "127.0.0.1:5000/demo/db:v9")
        let (_, pinnedConfig) = try await api.call("GET", "/api/stacks/\(stackId)/config", expect: 200)
        #expect((pinnedConfig["config"] as? String)?.contains("127.0.0.1:5000/demo/web:v9") == true)
        let (_, byVariable, _) = try await Self.post(url + "?SERVICE_TAG=prod&wait=30")
        let variablePlan = ((byVariable["job"] as? [String: Any])?["plan"] as? [String: Any])?["services"] as? [[String: String]]
        #expect(variablePlan?.first { $0["name"] == "web" }?["image"] == "127.0.0.1:5000/demo/web:prod")
        #expect(variablePlan?.first { $0["name"] == "db" }?["image"] == "127.0.0.1:5000/demo/db:v9")

        // Rotate: the old URL answers 404 with the same body as an unknown token; disable likewise.
        let (_, rotated) = try await api.call("POST", "/api/stacks/\(stackId)/webhook/rotate", expect: 201)
        let newURL = rotated["url"] as! String
        #expect(newURL != url)
        let (oldStatus, oldBody, _) = try await Self.post(url)
        let (unknownStatus, unknownBody, _) = try await Self.post(server.url + "/api/stacks/webhooks/00000000-0000-4000-8000-000000000000")
        #expect(oldStatus == 404 && unknownStatus == 404)
        #expect(NSDictionary(dictionary: oldBody) == NSDictionary(dictionary: unknownBody))
        try await api.call("DELETE", "/api/stacks/\(stackId)/webhook", expect: 204)
        let (disabledStatus, disabledBody, _) = try await Self.post(newURL)
        #expect(disabledStatus == 404)
        #expect(NSDictionary(dictionary: disabledBody) == NSDictionary(dictionary: unknownBody), "a disabled token answers as an unknown one")

        // Edge environments refuse webhooks, saying why.
        let (_, edge) = try await api.call("POST", "/api/environments", json: ["name": "edge-1", "type": "edge"], expect: 201)
        let edgeId = (edge["environment"] as! [String: Any])["id"] as! String
        let (_, edgeStack) = try await api.call("POST", "/api/stacks", json: ["name": "app", "environmentId": edgeId, "compose": compose], expect: 201)
        let edgeStackId = (edgeStack["stack"] as! [String: Any])["id"] as! String
        let (refused, refusal) = try await api.call("POST", "/api/stacks/\(edgeStackId)/webhook")
        #expect(refused == 409)
        let error = refusal["error"] as? [String: Any]
        #expect(error?["code"] as? String == "edge_environment")
        #expect((error?["message"] as? String)?.contains("permanent") == true)
        let (rotateRefused, rotateRefusal) = try await api.call("POST", "/api/stacks/\(edgeStackId)/webhook/rotate")
        #expect(rotateRefused == 409 && (rotateRefusal["error"] as? [String: Any])?["code"] as? String == "edge_environment",
                "rotate on an edge stack says why, as enable does")

        // Management routes need the token.
        #expect(try await APIClient(base: server.url).call("GET", "/api/stacks").0 == 401)
        await agent.stop()
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
