import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import WharfAgent
import WharfProtocol
@testable import WharfServer

/// A stack's health timeout (`healthTimeout`, seconds) through the real API over a real SQLite
/// file: set, kept and changed; refused when out of range with nothing written; carried in each
/// job as its stack had it when the job was queued, to the agent's health wait.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct StackHealthTimeoutTests {
    static let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:v1\n"

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, json: [String: Any]? = nil,
                     body: String? = nil) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await PlanAheadTests.call(client, method, uri, json: json, body: body)
    }

    static func errorOf(_ body: [String: Any]) -> (code: String?, message: String) {
        let error = body["error"] as? [String: Any]
        return (error?["code"] as? String, error?["message"] as? String ?? "")
    }

    /// Creates a stack through the API; returns its JSON and its first job's id.
    static func create(_ setup: PlanAheadTests.Setup, _ client: any TestClientProtocol, _ name: String,
                       healthTimeout: Int? = nil) async throws -> (stack: [String: Any], jobId: String) {
        var json: [String: Any] = ["name": name, "environmentId": setup.environmentId, "compose": compose]
        if let healthTimeout { json["healthTimeout"] = healthTimeout }
        let (status, created) = try await call(client, .post, "/api/stacks", json: json)
        #expect(status == .created, "\(created)")
        let stack = try #require(created["stack"] as? [String: Any])
        return (stack, try #require((created["job"] as? [String: Any])?["id"] as? String))
    }

    /// The job specs a dispatch round would send now (each stack's head), by job id.
    static func dispatched(_ setup: PlanAheadTests.Setup) async throws -> [String: JobSpec] {
        let specs = try await setup.harness.store.claimDispatch([DispatchRequest(environmentId: setup.environmentId, skip: [], capacity: 10)])
            .flatMap(\.jobs)
        return Dictionary(specs.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
    }

    static func jobCount(_ setup: PlanAheadTests.Setup) async throws -> Int {
        try await setup.harness.store.jobs(stackId: nil, state: nil, limit: 1000).count
    }

    @Test func aStacksHealthTimeoutIsSetKeptAndChangedAndEachJobKeepsItsOwn() async throws {
        try await PlanAheadTests.withAPI { setup, client in
            // Without one: 60 s, in the stack and in the job its agent gets.
            let (plain, plainJob) = try await Self.create(setup, client, "plain")
            #expect(plain["healthTimeout"] as? Int == 60)
            // With one.
            let (slow, slowJob) = try await Self.create(setup, client, "slow", healthTimeout: 300)
            #expect(slow["healthTimeout"] as? Int == 300)
            let slowId = try #require(slow["id"] as? String)
            let (_, listed) = try await Self.call(client, .get, "/api/stacks")
            let timeouts = (listed["stacks"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "")=\($0["healthTimeout"] ?? "")" }
            #expect(timeouts == ["plain=60", "slow=300"])
            let first = try await Self.dispatched(setup)
            #expect(first[plainJob]?.healthTimeoutSeconds == 60)
            #expect(first[slowJob]?.healthTimeoutSeconds == 300)

            // A redeploy queued now keeps 300 even if an edit changes the stack before it runs,
            // as it keeps its compose file and env; the edit's own deploy runs with the new value.
            let (_, redeploy) = try await Self.call(client, .post, "/api/stacks/\(slowId)/redeploy")
            let redeployId = try #require(PlanAheadTests.job(redeploy)?["id"] as? String)
            let (edited, editBody) = try await Self.call(client, .put, "/api/stacks/\(slowId)", json: ["healthTimeout": 15])
            #expect(edited == .ok, "\(editBody)")
            #expect((editBody["stack"] as? [String: Any])?["healthTimeout"] as? Int == 15)
            let editId = try #require(PlanAheadTests.job(editBody)?["id"] as? String)
            #expect(try await PlanAheadTests.stack(client, slowId)["healthTimeout"] as? Int == 15)

            try await PlanAheadTests.finish(setup, slowJob, .succeeded, plan: ["web": "127.0.0.1:5000/demo/web:v1"])
            #expect(try await Self.dispatched(setup)[redeployId]?.healthTimeoutSeconds == 300)
            try await PlanAheadTests.finish(setup, redeployId, .succeeded, plan: ["web": "127.0.0.1:5000/demo/web:v1"])
            #expect(try await Self.dispatched(setup)[editId]?.healthTimeoutSeconds == 15)
            try await PlanAheadTests.finish(setup, editId, .succeeded, plan: ["web": "127.0.0.1:5000/demo/web:v1"])

            // An edit without it keeps it (for its own deploy too); a webhook's deploy runs with it.
            let (keptStatus, kept) = try await Self.call(client, .put, "/api/stacks/\(slowId)", json: ["env": ["A": "1"]])
            #expect(keptStatus == .ok && (kept["stack"] as? [String: Any])?["healthTimeout"] as? Int == 15, "\(kept)")
            let keptId = try #require(PlanAheadTests.job(kept)?["id"] as? String)
            #expect(try await Self.dispatched(setup)[keptId]?.healthTimeoutSeconds == 15)
            try await PlanAheadTests.finish(setup, keptId, .succeeded, plan: ["web": "127.0.0.1:5000/demo/web:v1"])
            let (_, hook) = try await Self.call(client, .post, "/api/stacks/\(slowId)/webhook")
            let path = String(try #require(hook["url"] as? String).dropFirst("http://wharf.test".count))
            let (triggered, trigger) = try await Self.call(client, .post, path + "?tag=v2")
            #expect(triggered == .accepted, "\(trigger)")
            let triggerId = try #require(PlanAheadTests.job(trigger)?["id"] as? String)
            #expect(try await Self.dispatched(setup)[triggerId]?.healthTimeoutSeconds == 15)
            // The stored value survives a restart: the store opened again on the same file.
            let reopened = try SQLiteStore(path: setup.harness.directory.appendingPathComponent("wharf.sqlite").path)
            #expect(try await reopened.stack(id: slowId, publicURL: "http://wharf.test").healthTimeout == 15)
        }
    }

    @Test(arguments: [
        // (healthTimeout as JSON text, the error code)
        ("0", "invalid_health_timeout"),
        ("-5", "invalid_health_timeout"),
        ("3601", "invalid_health_timeout"),
        ("86400", "invalid_health_timeout"),
        ("1.5", "invalid_health_timeout"),
        ("99999999999999999999", "invalid_health_timeout"),
        (#""60""#, "invalid_json"),
        ("true", "invalid_json"),
        ("[60]", "invalid_json"),
    ])
    func aBadHealthTimeoutIsRefusedAndNothingIsWritten(value: String, code: String) async throws {
        try await PlanAheadTests.withAPI { setup, client in
            let (created, createdBody) = try await Self.call(client, .post, "/api/stacks", body: """
                {"name":"app","environmentId":"\(setup.environmentId)","compose":"services:\\n  web:\\n    image: nginx\\n","healthTimeout":\(value)}
                """)
            #expect(created == .badRequest, "\(createdBody)")
            #expect(Self.errorOf(createdBody).code == code, "\(createdBody)")
            #expect(Self.errorOf(createdBody).message.contains("healthTimeout"), "the message names the field: \(createdBody)")
            let (_, stacks) = try await Self.call(client, .get, "/api/stacks")
            #expect((stacks["stacks"] as? [Any])?.isEmpty == true, "no stack was created: \(stacks)")
            #expect(try await Self.jobCount(setup) == 0)

            let (stack, _) = try await Self.create(setup, client, "kept", healthTimeout: 90)
            let stackId = try #require(stack["id"] as? String)
            let jobs = try await Self.jobCount(setup)
            for (method, path) in [(HTTPRequest.Method.put, "/api/stacks/\(stackId)"), (.post, "/api/stacks/\(stackId)/config")] {
                let (status, body) = try await Self.call(client, method, path, body: #"{"env":{"A":"1"},"healthTimeout":\#(value)}"#)
                #expect(status == .badRequest, "\(method) \(path): \(body)")
                #expect(Self.errorOf(body).code == code, "\(method) \(path): \(body)")
            }
            let after = try await PlanAheadTests.stack(client, stackId)
            #expect(after["healthTimeout"] as? Int == 90 && (after["env"] as? [String: String])?.isEmpty == true, "\(after)")
            #expect(try await Self.jobCount(setup) == jobs, "no redeploy was queued")
        }
    }

    @Test func theBoundsAreTaken() async throws {
        try await PlanAheadTests.withAPI { setup, client in
            let (low, _) = try await Self.create(setup, client, "low", healthTimeout: 1)
            #expect(low["healthTimeout"] as? Int == 1)
            let (high, _) = try await Self.create(setup, client, "high", healthTimeout: 3600)
            #expect(high["healthTimeout"] as? Int == 3600)
            // `null` is as if left out: the default on a new stack, the stack's own on an edit.
            let (status, none) = try await Self.call(client, .post, "/api/stacks", body: """
                {"name":"none","environmentId":"\(setup.environmentId)","compose":"services:\\n  web:\\n    image: nginx\\n","healthTimeout":null}
                """)
            #expect(status == .created && (none["stack"] as? [String: Any])?["healthTimeout"] as? Int == 60, "\(none)")
            let highId = try #require(high["id"] as? String)
            let (edited, body) = try await Self.call(client, .put, "/api/stacks/\(highId)", body: #"{"healthTimeout":null}"#)
            #expect(edited == .ok && (body["stack"] as? [String: Any])?["healthTimeout"] as? Int == 3600, "\(body)")
        }
    }

    /// `{"composeFile": …}` or `{"environment": …}` used to answer 200 and redeploy the stack unchanged.
    @Test func unknownFieldsAreRefusedNamingThemAndNothingIsWritten() async throws {
        try await PlanAheadTests.withAPI { setup, client in
            let (created, createdBody) = try await Self.call(client, .post, "/api/stacks", json: [
                "name": "app", "environmentId": setup.environmentId, "compose": Self.compose, "environment": ["A": "1"]])
            #expect(created == .badRequest && Self.errorOf(createdBody).code == "invalid_json", "\(createdBody)")
            #expect(Self.errorOf(createdBody).message.contains("'environment'"), "\(createdBody)")
            let (_, stacks) = try await Self.call(client, .get, "/api/stacks")
            #expect((stacks["stacks"] as? [Any])?.isEmpty == true, "\(stacks)")
            // A misspelt required field is named as unknown, which is what the caller has to fix.
            let (misspelt, misspeltBody) = try await Self.call(client, .post, "/api/stacks", json: [
                "name": "app", "environmentId": setup.environmentId, "composeFile": Self.compose])
            #expect(misspelt == .badRequest && Self.errorOf(misspeltBody).message.contains("'composeFile'"), "\(misspeltBody)")

            let (stack, _) = try await Self.create(setup, client, "app")
            let stackId = try #require(stack["id"] as? String)
            let jobs = try await Self.jobCount(setup)
            let bodies: [[String: Any]] = [["composeFile": "services:\n  web:\n    image: nginx:2\n"],
                                           ["environment": ["A": "1"]],
                                           ["compose": Self.compose, "env": ["A": "1"], "healthtimeout": 5]]
            for json in bodies {
                let unknown = json.keys.first { !["compose", "env"].contains($0) }!
                for (method, path) in [(HTTPRequest.Method.put, "/api/stacks/\(stackId)"), (.post, "/api/stacks/\(stackId)/config")] {
                    let (status, body) = try await Self.call(client, method, path, json: json)
                    #expect(status == .badRequest, "\(method) \(path) \(json): \(body)")
                    #expect(Self.errorOf(body).code == "invalid_json", "\(body)")
                    #expect(Self.errorOf(body).message.contains("'\(unknown)'"), "the message names the key: \(body)")
                    #expect(Self.errorOf(body).message.contains("compose, env and healthTimeout"), "and what the route takes: \(body)")
                }
            }
            let after = try await PlanAheadTests.stack(client, stackId)
            #expect(after["compose"] as? String == Self.compose && (after["env"] as? [String: String])?.isEmpty == true, "\(after)")
            // A redeploy asked not to pull under a misspelt name used to pull; a render, to drop the field.
            for (path, json, takes) in [("/api/stacks/\(stackId)/redeploy", ["pullimage": false] as [String: Any], "takes pullImage."),
                                        ("/api/compose/render", ["compose": Self.compose, "environment": ["A": "1"]], "takes compose and env.")] {
                let (status, body) = try await Self.call(client, .post, path, json: json)
                #expect(status == .badRequest && Self.errorOf(body).code == "invalid_json", "\(path): \(body)")
                #expect(Self.errorOf(body).message.contains(takes), "\(path): \(body)")
            }
            #expect(try await Self.jobCount(setup) == jobs, "no redeploy was queued")
            let (redeployed, redeployBody) = try await Self.call(client, .post, "/api/stacks/\(stackId)/redeploy", json: ["pullImage": false])
            #expect(redeployed == .accepted, "\(redeployBody)")
            // Known fields still go through.
            let (ok, okBody) = try await Self.call(client, .put, "/api/stacks/\(stackId)", json: ["env": ["A": "1"]])
            #expect(ok == .ok, "\(okBody)")
        }
    }

    @Test func aDatabaseOfAnOlderServerGetsTheDefault() async throws {
        // What a server before the setting left: its migrations up to v7, a stack and its queued deploy.
        let harness = try await LinkHarness(database: { path in
            let old = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(old, upTo: "v7-jobs-by-state")
            try old.write { db in
                let now = Date().timeIntervalSince1970
                try db.execute(sql: "INSERT INTO environment (id, name, type, created_at) VALUES ('env_old', 'old', 'agent', ?)",
                               arguments: [now])
                try db.execute(sql: """
                    INSERT INTO stack (id, name, environment_id, compose, env, status, last_job_id, services, created_at, updated_at)
                    VALUES ('stk_old', 'app', 'env_old', ?, '{}', 'deploying', 'job_old', '[]', ?, ?)
                    """, arguments: [Self.compose, now, now])
                try db.execute(sql: """
                    INSERT INTO job (id, stack_id, stack_name, environment_id, kind, state, trigger, created_at, plan, compose, env, pull)
                    VALUES ('job_old', 'stk_old', 'app', 'env_old', 'deploy', 'queued', '{"params":{},"source":"api"}', ?,
                            '{"services":[{"image":"127.0.0.1:5000/demo/web:v1","name":"web"}]}', ?, '{}', 1)
                    """, arguments: [now, Self.compose])
            }
            try old.close()
        })
        let migrations = try await harness.store.db.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) }
        #expect(migrations == Set(SQLiteStore.migrator.migrations))
        #expect(try await harness.store.stack(id: "stk_old", publicURL: "http://wharf.test").healthTimeout == 60)
        let spec = try await harness.store.claimDispatch([DispatchRequest(environmentId: "env_old", skip: [], capacity: 10)])
            .first?.jobs.first
        #expect(spec?.id == "job_old" && spec?.healthTimeoutSeconds == 60)
        // NULL on the old rows, not 60 written into them: the default stays the server's to say.
        let stored = try await harness.store.db.read { db -> [Int?] in
            let row = try Row.fetchOne(db, sql: "SELECT s.health_timeout AS stack, j.health_timeout AS job FROM stack s, job j")
            return [row?["stack"], row?["job"]]
        }
        #expect(stored == [nil, nil])
        await harness.stop()
    }

    /// Records the health timeout of each deploy an agent runs, and succeeds.
    final class RecordingEngine: ContainerEngine, Sendable {
        /// By compose project, in the order the deploys ran.
        let healthTimeouts = Mutex<[String: [Duration]]>([:])

        func info() async throws -> EngineInfo {
            EngineInfo(dockerVersion: "simulated", composeFlavour: .plugin, composeVersion: "simulated")
        }

        func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
            healthTimeouts.withLock { $0[deployment.projectName, default: []].append(deployment.healthTimeout) }
            return DeployOutcome(state: .succeeded, services: deployment.images.keys.sorted().map {
                ServiceOutcome(name: $0, image: deployment.images[$0]!, imageId: "sha256:simulated", containers: 1)
            })
        }

        func remove(stackId: String, projectName: String, compose: String, environment: [String: String],
                    log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
            DeployOutcome(state: .succeeded)
        }
    }

    /// Over the real link to an in-process agent: the deploy it runs waits as long as its stack says.
    @Test func theAgentsDeployWaitsAsLongAsTheStackSays() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let engine = RecordingEngine()
        let (_, agent) = try harness.agent(keys: pair, engine: engine)
        let api = harness.makeAPI(publicURL: "http://wharf.test", label: "health-timeout-test", logLevel: .warning)
        do {
            try await Application(router: api.makeRouter()).test(.router) { client in
                let setup = PlanAheadTests.Setup(harness: harness, api: api, environmentId: environment.id)
                let (quick, quickJob) = try await Self.create(setup, client, "quick", healthTimeout: 7)
                let (_, plainJob) = try await Self.create(setup, client, "plain")
                for id in [quickJob, plainJob] {
                    #expect(try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(30)).state == .succeeded)
                }
                let quickId = try #require(quick["id"] as? String)
                let (_, edited) = try await Self.call(client, .put, "/api/stacks/\(quickId)", json: ["healthTimeout": 2400])
                let editJob = try #require(PlanAheadTests.job(edited)?["id"] as? String)
                #expect(try await harness.dispatcher.waitForFinish(jobId: editJob, timeout: .seconds(30)).state == .succeeded)
                // A webhook call for a stack with nothing open is claimed for the connected agent in
                // the transaction that queues it (`Enqueued.claimed`): that spec carries it too.
                let (_, hook) = try await Self.call(client, .post, "/api/stacks/\(quickId)/webhook")
                let path = String(try #require(hook["url"] as? String).dropFirst("http://wharf.test".count))
                let (_, trigger) = try await Self.call(client, .post, path + "?tag=v2")
                let triggerJob = try #require(PlanAheadTests.job(trigger)?["id"] as? String)
                #expect(PlanAheadTests.job(trigger)?["state"] as? String == "dispatched", "claimed at intake: \(trigger)")
                #expect(try await harness.dispatcher.waitForFinish(jobId: triggerJob, timeout: .seconds(30)).state == .succeeded)
            }
            #expect(engine.healthTimeouts.withLock { $0 } == ["quick": [.seconds(7), .seconds(2400), .seconds(2400)], "plain": [.seconds(60)]])
        } catch {
            agent.cancel()
            await harness.stop()
            throw error
        }
        agent.cancel()
        await harness.stop()
    }
}
