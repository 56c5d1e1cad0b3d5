import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WharfProtocol
@testable import WharfServer
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// "A repeated event `id` is not run twice" (CONTRACT.md), for registry notifications, on a live
/// server with the real API (the webhook lane included) and a real SQLite file: an event id is
/// seen per stack, because a registry sends one envelope to every endpoint; it is seen only once
/// the job it queued or joined is written, so a registry's retry after a failure still deploys;
/// an existing database is upgraded, old ids are pruned, and a stack's ids go with it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RegistryEventTests {
    static let publicURL = "http://wharf.test"
    static let contentType = "application/vnd.docker.distribution.events.v1+json"

    struct Setup {
        let harness: LinkHarness
        let api: API
        let lane: WebhookLane
        let environment: WharfServer.Environment
    }

    static func setUp(database: ((String) throws -> Void)? = nil) async throws -> Setup {
        let harness = try await LinkHarness(database: database)
        // At info, above debug: the server has its webhook lane.
        let api = harness.makeAPI(publicURL: publicURL, label: "registry-event-test")
        let lane = try #require(api.makeWebhookLane(serverName: "wharf"))
        // No agent connects: each stack's first deploy stays queued, and pushes join it.
        let (environment, _) = try await harness.enrolledEnvironment()
        return Setup(harness: harness, api: api, lane: lane, environment: environment)
    }

    /// A stack (image `127.0.0.1:5000/demo/web:v1`) with a webhook; returns it and its webhook path.
    static func stack(_ setup: Setup, _ name: String) async throws -> (Stack, String) {
        let (stack, _) = try await setup.harness.stack(name, on: setup.environment.id)
        let token = WebhookToken.generate().rawValue
        _ = try await setup.harness.store.setWebhookToken(stackId: stack.id, token: token, publicURL: publicURL)
        return (stack, "/api/stacks/webhooks/\(token)")
    }

    static func application(_ setup: Setup) -> some ApplicationProtocol {
        Application(responder: setup.api.makeResponder(), server: .wharf(lane: setup.lane),
                    configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "wharf"))
    }

    /// What CNCF Distribution sends every endpoint when `tag` of `demo/web` is pushed.
    static func envelope(id: String, tag: String) -> ByteBuffer {
        ByteBuffer(string: """
            {"events":[{"id":"\(id)","timestamp":"2025-01-01T00:00:00Z","action":"push",
            "target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:abc","size":1,
            "repository":"demo/web","tag":"\(tag)","url":"http://127.0.0.1:5000/v2/demo/web/manifests/sha256:abc"},
            "request":{"id":"req-1","host":"127.0.0.1:5000","method":"PUT","useragent":"docker/27"},
            "source":{"addr":"registry:5000"}}]}
            """)
    }

    static func post(_ client: some TestClientProtocol, _ path: String, id: String, tag: String) async throws -> TestResponse {
        try await client.execute(uri: path, method: .post, headers: [.contentType: contentType], body: envelope(id: id, tag: tag))
    }

    static func body(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
    }

    /// The job in a 202.
    static func job(_ response: TestResponse) throws -> [String: Any] {
        try #require(try body(response)["job"] as? [String: Any])
    }

    static func webImage(_ job: [String: Any]) -> String? {
        ((job["plan"] as? [String: Any])?["services"] as? [[String: String]])?.first { $0["name"] == "web" }?["image"]
    }

    static func eventRows(_ store: SQLiteStore) async throws -> Int {
        try await store.db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM registry_event") ?? 0 }
    }

    @Test func oneEnvelopeSentToTwoStacksEndpointsDeploysBoth() async throws {
        let setup = try await Self.setUp()
        let (blue, bluePath) = try await Self.stack(setup, "blue")
        let (green, greenPath) = try await Self.stack(setup, "green")
        try await Self.application(setup).test(.live) { client in
            // The registry has an endpoint per stack and posts the same envelope, same event id, to each.
            for (stack, path) in [(blue, bluePath), (green, greenPath)] {
                let response = try await Self.post(client, path, id: "evt-shared", tag: "v2")
                #expect(response.status == .accepted, "\(stack.name): \(String(buffer: response.body))")
                let job = try Self.job(response)
                #expect(job["stackId"] as? String == stack.id)
                #expect(Self.webImage(job) == "127.0.0.1:5000/demo/web:v2")
            }
        }
        for stack in [blue, green] {
            let queued = try await setup.harness.store.jobs(stackId: stack.id, state: .queued, limit: 10)
            #expect(queued.count == 1)
            #expect(queued.first?.plan.services.first?.image == "127.0.0.1:5000/demo/web:v2", "\(stack.name) deploys the push")
        }
        #expect(setup.lane.answered.load(ordering: .relaxed) == 0, "the lane never answers a registry call")
        await setup.harness.stop()
    }

    @Test func aRepeatedEnvelopeRunsOnceForAStack() async throws {
        let setup = try await Self.setUp()
        let (stack, path) = try await Self.stack(setup, "app")
        try await Self.application(setup).test(.live) { client in
            let first = try await Self.post(client, path, id: "evt-1", tag: "v2")
            #expect(first.status == .accepted)
            let jobId = try #require(try Self.job(first)["id"] as? String)
            let count = try Self.job(first)["coalesced"] as? Int

            let repeated = try await Self.post(client, path, id: "evt-1", tag: "v2")
            #expect(repeated.status == .ok)
            #expect(try Self.body(repeated)["ignored"] as? String == "event already received")
            #expect(try await setup.harness.store.job(id: jobId).job.coalesced == count, "the repeat did not join the job")

            // The same new envelope several times at once (a registry's retries racing its first
            // delivery): one call runs, every other is answered as a repeat.
            let port = try #require(client.port)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
                        request.httpMethod = "POST"
                        request.setValue(Self.contentType, forHTTPHeaderField: "Content-Type")
                        request.httpBody = Data(buffer: Self.envelope(id: "evt-2", tag: "v3"))
                        let (_, response) = try await URLSession.shared.data(for: request)
                        return (response as! HTTPURLResponse).statusCode
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.sorted() == [200, 200, 200, 200, 200, 202], "\(statuses)")

            // A new event that changes nothing of the queued job joins it, and is remembered too.
            let same = try await Self.post(client, path, id: "evt-3", tag: "v3")
            #expect(same.status == .accepted)
            #expect(Self.webImage(try Self.job(same)) == "127.0.0.1:5000/demo/web:v3")
            #expect(try await Self.post(client, path, id: "evt-3", tag: "v3").status == .ok)
        }
        let jobs = try await setup.harness.store.jobs(stackId: stack.id, state: nil, limit: 10)
        #expect(jobs.count == 1, "every push joined the queued first deploy")
        #expect(jobs.first?.coalesced == 3, "evt-1, evt-2 and evt-3, once each")
        #expect(setup.lane.answered.load(ordering: .relaxed) == 0, "the lane never answers a registry call")
        await setup.harness.stop()
    }

    @Test func anEventReceivedBeforeIsLeftOutOfAnEnvelopeThatAlsoHasANewOne() async throws {
        let setup = try await Self.setUp()
        let (stack, path) = try await Self.stack(setup, "app")
        try await Self.application(setup).test(.live) { client in
            #expect(try await Self.post(client, path, id: "evt-old", tag: "v2").status == .accepted)
            // The registry sends the new push together with the old event again. Run again, the old
            // event would come last and move web back to v2.
            let events = [("evt-new", "v3"), ("evt-old", "v2")].map { id, tag in
                String(buffer: Self.envelope(id: id, tag: tag)).dropFirst(#"{"events":["#.count).dropLast(2)
            }
            let mixed = try await client.execute(uri: path, method: .post, headers: [.contentType: Self.contentType],
                                                 body: ByteBuffer(string: #"{"events":["# + events.joined(separator: ",") + "]}"))
            #expect(mixed.status == .accepted, "\(String(buffer: mixed.body))")
            #expect(Self.webImage(try Self.job(mixed)) == "127.0.0.1:5000/demo/web:v3", "only the new event is run")
            #expect(try await Self.post(client, path, id: "evt-new", tag: "v3").status == .ok, "and it is remembered")
        }
        let jobs = try await setup.harness.store.jobs(stackId: stack.id, state: nil, limit: 10)
        #expect(jobs.first?.plan.services.first?.image == "127.0.0.1:5000/demo/web:v3")
        await setup.harness.stop()
    }

    @Test func anEventAnotherDeliveryRecordsWhileACallIsPlannedIsLeftOutOfIt() async throws {
        let setup = try await Self.setUp()
        let (stack, path) = try await Self.stack(setup, "app")
        // Two overlapping deliveries at once: the call read the stack's events before the other
        // delivery's job committed `evt-old`. A trigger plays that delivery, inside the call's own
        // transaction, as its first id is recorded.
        try await setup.harness.store.db.write { db in
            try db.execute(sql: """
                CREATE TRIGGER other_delivery AFTER INSERT ON registry_event WHEN NEW.id = 'evt-new' BEGIN
                INSERT OR IGNORE INTO registry_event (stack_id, id, seen_at) VALUES (NEW.stack_id, 'evt-old', NEW.seen_at);
                END;
                """)
        }
        try await Self.application(setup).test(.live) { client in
            let events = [("evt-new", "v3"), ("evt-old", "v2")].map { id, tag in
                String(buffer: Self.envelope(id: id, tag: tag)).dropFirst(#"{"events":["#.count).dropLast(2)
            }
            let mixed = try await client.execute(uri: path, method: .post, headers: [.contentType: Self.contentType],
                                                 body: ByteBuffer(string: #"{"events":["# + events.joined(separator: ",") + "]}"))
            #expect(mixed.status == .accepted, "\(String(buffer: mixed.body))")
            // Planned again without it: run again, the old event would come last and move web back to v2.
            #expect(Self.webImage(try Self.job(mixed)) == "127.0.0.1:5000/demo/web:v3")
        }
        let jobs = try await setup.harness.store.jobs(stackId: stack.id, state: nil, limit: 10)
        #expect(jobs.count == 1 && jobs.first?.plan.services.first?.image == "127.0.0.1:5000/demo/web:v3")
        #expect(try await setup.harness.store.receivedRegistryEvents(stackId: stack.id, ids: ["evt-new", "evt-old"]) == ["evt-new", "evt-old"])
        await setup.harness.stop()
    }

    @Test func aJobRequestNamingEventsRecordedSinceItWasPlannedWritesNothing() async throws {
        let setup = try await Self.setUp()
        let (stack, _) = try await Self.stack(setup, "app")
        let store = setup.harness.store
        func request(_ ids: [String], image: String) -> JobRequest {
            JobRequest(kind: .deploy, plan: [PlannedService(name: "web", image: image)],
                       trigger: JobTrigger(source: "registry"), coalesce: true, eventIds: ids)
        }
        let first = try await store.enqueueJob(stackId: stack.id, request: request(["evt-old"], image: "127.0.0.1:5000/demo/web:v2"))
        await #expect(throws: RegistryEventsRaced.self) {
            _ = try await store.enqueueJob(stackId: stack.id, request: request(["evt-new", "evt-old"], image: "127.0.0.1:5000/demo/web:v2"))
        }
        do {
            _ = try await store.enqueueJob(stackId: stack.id, request: request(["evt-new", "evt-old"], image: "127.0.0.1:5000/demo/web:v2"))
        } catch let raced as RegistryEventsRaced {
            #expect(raced.ids == ["evt-old"])
        }
        // Nothing of it was written: not its new event, nor a join.
        #expect(try await store.receivedRegistryEvents(stackId: stack.id, ids: ["evt-new"]).isEmpty)
        #expect(try await store.job(id: first.id).job.coalesced == first.coalesced)
        await #expect(throws: StoreError.eventAlreadyReceived) {
            _ = try await store.enqueueJob(stackId: stack.id, request: request(["evt-old"], image: "127.0.0.1:5000/demo/web:v2"))
        }
        await setup.harness.stop()
    }

    @Test func anEnvelopeWhoseJobIsNotWrittenIsRunWhenTheRegistryRetries() async throws {
        let setup = try await Self.setUp()
        let (stack, path) = try await Self.stack(setup, "app")
        // The job cannot be written (a full disk, an I/O error): the call fails, the registry retries.
        try await setup.harness.store.db.write { db in
            try db.execute(sql: """
                CREATE TRIGGER job_insert_fails BEFORE INSERT ON job BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;
                CREATE TRIGGER job_update_fails BEFORE UPDATE ON job BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;
                """)
        }
        try await Self.application(setup).test(.live) { client in
            let failed = try await Self.post(client, path, id: "evt-1", tag: "v2")
            #expect(failed.status == .internalServerError)
            #expect(!String(buffer: failed.body).contains("disk I/O"), "nothing internal leaks")
            #expect(try await Self.eventRows(setup.harness.store) == 0, "the event is not seen without its job")

            try await setup.harness.store.db.write { db in
                try db.execute(sql: "DROP TRIGGER job_insert_fails; DROP TRIGGER job_update_fails")
            }
            let retried = try await Self.post(client, path, id: "evt-1", tag: "v2")
            #expect(retried.status == .accepted, "\(String(buffer: retried.body))")
            #expect(Self.webImage(try Self.job(retried)) == "127.0.0.1:5000/demo/web:v2")
            #expect(try await Self.post(client, path, id: "evt-1", tag: "v2").status == .ok, "and once written, it is seen")
        }
        let queued = try await setup.harness.store.jobs(stackId: stack.id, state: .queued, limit: 10)
        #expect(queued.first?.plan.services.first?.image == "127.0.0.1:5000/demo/web:v2")
        await setup.harness.stop()
    }

    @Test func aDatabaseOfAnOlderServerIsUpgraded() async throws {
        let token = WebhookToken.generate().rawValue
        // What a server before per-stack event ids left: its migrations up to v3, a stack with a
        // webhook, and an event id it had received (for some stack, it could not say which).
        let setup = try await Self.setUp(database: { path in
            let old = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(old, upTo: "v3-open-jobs-by-stack")
            try old.write { db in
                let now = Date().timeIntervalSince1970
                try db.execute(sql: "INSERT INTO environment (id, name, type, created_at) VALUES ('env_old', 'old', 'agent', ?)",
                               arguments: [now])
                try db.execute(sql: """
                    INSERT INTO stack (id, name, environment_id, compose, env, status, webhook_token, webhook_created_at,
                                       services, created_at, updated_at)
                    VALUES ('stk_old', 'app', 'env_old', ?, '{}', 'running', ?, ?, '[]', ?, ?)
                    """, arguments: ["services:\n  web:\n    image: 127.0.0.1:5000/demo/web:v1\n", token, now, now, now])
                try db.execute(sql: "INSERT INTO registry_event (id, seen_at) VALUES ('evt-1', ?)", arguments: [now])
            }
            try old.close()
        })
        let columns = try await setup.harness.store.db.read { db in
            try Row.fetchAll(db, sql: "PRAGMA table_info(registry_event)").map { $0["name"] as String }
        }
        #expect(Set(columns) == ["stack_id", "id", "seen_at"])
        let migrations = try await setup.harness.store.db.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) }
        #expect(migrations == Set(SQLiteStore.migrator.migrations))
        #expect(try await setup.harness.store.stack(id: "stk_old", publicURL: Self.publicURL).name == "app")
        try await Self.application(setup).test(.live) { client in
            let path = "/api/stacks/webhooks/\(token)"
            // The old id, which no stack can be told to have seen, deploys; and is seen from now on.
            let pushed = try await Self.post(client, path, id: "evt-1", tag: "v2")
            #expect(pushed.status == .accepted, "\(String(buffer: pushed.body))")
            #expect(Self.webImage(try Self.job(pushed)) == "127.0.0.1:5000/demo/web:v2")
            #expect(try await Self.post(client, path, id: "evt-1", tag: "v2").status == .ok)
        }
        await setup.harness.stop()
    }

    @Test func oldEventIdsArePrunedAtStartAndAStacksIdsGoWithIt() async throws {
        let setup = try await Self.setUp()
        let (old, oldPath) = try await Self.stack(setup, "old")
        let (recent, recentPath) = try await Self.stack(setup, "recent")
        try await Self.application(setup).test(.live) { client in
            for path in [oldPath, recentPath] {
                let response = try await Self.post(client, path, id: "evt-1", tag: "v2")
                #expect(response.status == .accepted)
            }
        }
        // Eight days ago is past the week a stack keeps an id; two days is not.
        let day: TimeInterval = 86_400
        try await setup.harness.store.db.write { db in
            try db.execute(sql: "UPDATE registry_event SET seen_at = ? WHERE stack_id = ?",
                           arguments: [Date().addingTimeInterval(-8 * day).timeIntervalSince1970, old.id])
            try db.execute(sql: "UPDATE registry_event SET seen_at = ? WHERE stack_id = ?",
                           arguments: [Date().addingTimeInterval(-2 * day).timeIntervalSince1970, recent.id])
        }
        // A restart prunes: the store opened again on the same file.
        let restarted = try SQLiteStore(path: setup.harness.directory.appendingPathComponent("wharf.sqlite").path)
        let left = try await restarted.db.read { db in try String.fetchAll(db, sql: "SELECT stack_id FROM registry_event") }
        #expect(left == [recent.id])

        // A removed stack's ids go with it.
        for job in try await restarted.jobs(stackId: recent.id, state: .queued, limit: 10) {
            try await WebhookTargetCacheTests.succeed(restarted, job, environmentId: setup.environment.id)
        }
        let remove = try await restarted.enqueueJob(stackId: recent.id, request: JobRequest(
            kind: .remove, plan: [PlannedService(name: "web", image: "127.0.0.1:5000/demo/web:v2")], pull: false,
            trigger: JobTrigger(source: "api"), coalesce: false))
        try await WebhookTargetCacheTests.succeed(restarted, remove, environmentId: setup.environment.id)
        await #expect(throws: StoreError.self) { try await restarted.stack(id: recent.id, publicURL: Self.publicURL) }
        #expect(try await Self.eventRows(restarted) == 0)
        await setup.harness.stop()
    }
}
