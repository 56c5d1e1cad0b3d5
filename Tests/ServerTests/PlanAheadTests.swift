import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import WharfProtocol
@testable import WharfServer

/// What a deploy queued while others of its stack are still open plans, and what each job's
/// success leaves on the stack: the real API over a real SQLite file, jobs driven to dispatched
/// (`claimDispatch`) and finished (`applyAgentBatch`) as the link would, without an agent.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PlanAheadTests {
    static let adminToken = "admin-token"
    static let compose = """
        services:
          fe:
            image: 127.0.0.1:5000/demo/fe:${FE_TAG:-old}
          be:
            image: 127.0.0.1:5000/demo/be:${BE_TAG:-old}

        """

    /// The API on a link harness's store, and one environment that no agent serves.
    struct Setup {
        let harness: LinkHarness
        let api: API
        let environmentId: String
    }

    static func withAPI(_ body: @Sendable @escaping (Setup, any TestClientProtocol) async throws -> Void) async throws {
        let harness = try await LinkHarness()
        var configuration = ServerConfiguration(dataDirectory: harness.directory)
        configuration.publicURL = "http://wharf.test"
        configuration.webhookRateLimit = nil
        let settings = ServerSettings(configuration: configuration, zmqEndpoint: harness.dispatcher.endpoint,
                                      serverPublicKey: harness.serverKeys.publicKey.z85)
        var logger = Logger(label: "plan-test")
        logger.logLevel = .warning
        let api = API(store: harness.store, dispatcher: harness.dispatcher, keys: harness.keys, settings: settings,
                      adminToken: adminToken, logger: logger, metrics: WharfMetrics(), webhookRateLimit: nil)
        let (environment, _) = try await harness.store.createEnvironment(name: "node", type: .agent)
        let setup = Setup(harness: harness, api: api, environmentId: environment.id)
        do {
            try await Application(router: api.makeRouter()).test(.router) { client in try await body(setup, client) }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, json: [String: Any]? = nil,
                     contentType: String = "application/json", body text: String? = nil) async throws -> (HTTPResponse.Status, [String: Any]) {
        let data = try json.map { try JSONSerialization.data(withJSONObject: $0) } ?? text.map { Data($0.utf8) }
        let response = try await client.execute(uri: uri, method: method,
                                                headers: [.authorization: "Bearer \(adminToken)", .contentType: contentType],
                                                body: data.map { ByteBuffer(bytes: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response.status, object)
    }

    /// A job's plan, service by service.
    static func plan(_ job: [String: Any]?) -> [String: String] {
        let services = (job?["plan"] as? [String: Any])?["services"] as? [[String: String]] ?? []
        return Dictionary(services.map { ($0["name"] ?? "", $0["image"] ?? "") }, uniquingKeysWith: { $1 })
    }

    static func image(_ name: String, _ tag: String) -> String { "127.0.0.1:5000/demo/\(name):\(tag)" }

    /// Creates the stack through the API and runs its first deploy to success; returns its id and webhook path.
    static func runningStack(_ setup: Setup, _ client: any TestClientProtocol, env: [String: String] = [:]) async throws -> (String, String) {
        let (status, created) = try await call(client, .post, "/api/stacks",
                                               json: ["name": "app", "environmentId": setup.environmentId, "compose": compose, "env": env])
        #expect(status == .created)
        let stackId = try #require((created["stack"] as? [String: Any])?["id"] as? String)
        let first = try #require((created["job"] as? [String: Any])?["id"] as? String)
        #expect(try await dispatch(setup) == [first])
        try await finish(setup, first, .succeeded, plan: plan(created["job"] as? [String: Any]))
        let (_, hook) = try await call(client, .post, "/api/stacks/\(stackId)/webhook")
        let url = try #require(hook["url"] as? String)
        return (stackId, String(url.dropFirst("http://wharf.test".count)))
    }

    /// Claims the environment's queued heads, as a dispatch round for its connected agent would.
    static func dispatch(_ setup: Setup) async throws -> [String] {
        try await setup.harness.store.claimDispatch([DispatchRequest(environmentId: setup.environmentId, skip: [], capacity: 10)])
            .flatMap { $0.jobs.map(\.id) }
    }

    /// Stores an agent's final result for a job.
    static func finish(_ setup: Setup, _ jobId: String, _ state: FinalJobState, plan: [String: String] = [:]) async throws {
        var batch = AgentBatch()
        let services = state == .succeeded
            ? plan.keys.sorted().map { ServiceResult(name: $0, image: plan[$0]!, imageId: "sha256:\(plan[$0]!.count)", containers: 1) }
            : []
        batch.results = [.init(result: JobResult(jobId: jobId, state: state,
                                                 error: state == .succeeded ? nil : JobError(code: "pull_failed", message: "no"),
                                                 services: services),
                               environmentId: setup.environmentId)]
        let outcome = try await setup.harness.store.applyAgentBatch(batch, at: Date())
        guard case .stored(_, true) = outcome.results.first else {
            Issue.record("not stored: \(outcome.results)")
            return
        }
    }

    static func job(_ body: [String: Any]) -> [String: Any]? { body["job"] as? [String: Any] }

    static func registryPush(_ repository: String, _ tag: String, id: String) -> String {
        #"{"events":[{"id":"\#(id)","action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"\#(repository)","tag":"\#(tag)","url":"http://127.0.0.1:5000/v2/\#(repository)/manifests/sha256:\#(id)"},"request":{"host":"127.0.0.1:5000"}}]}"#
    }

    static func config(_ client: any TestClientProtocol, _ stackId: String) async throws -> [String: String] {
        let (_, body) = try await call(client, .get, "/api/stacks/\(stackId)/config")
        let services = body["services"] as? [[String: String]] ?? []
        return Dictionary(services.map { ($0["name"] ?? "", $0["image"] ?? "") }, uniquingKeysWith: { $1 })
    }

    static func stack(_ client: any TestClientProtocol, _ stackId: String) async throws -> [String: Any] {
        try #require(try await call(client, .get, "/api/stacks/\(stackId)").1["stack"] as? [String: Any])
    }

    // MARK: a job's success does not overwrite an edit made after it was queued.

    @Test func anEditMadeWhileAnEarlierJobIsInFlightOutlivesThatJobsSuccess() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            let (_, fe) = try await Self.call(client, .post, path + "?FE_TAG=abc")
            let j0 = try #require(Self.job(fe)?["id"] as? String)
            #expect(try await Self.dispatch(setup) == [j0])

            let edited = Self.compose + "  cache:\n    image: 127.0.0.1:5000/demo/cache:1\n"
            let (status, put) = try await Self.call(client, .put, "/api/stacks/\(stackId)", json: ["compose": edited, "env": ["BE_TAG": "new"]])
            #expect(status == .ok)
            let j1 = try #require(Self.job(put)?["id"] as? String)
            #expect(Self.plan(Self.job(put)) == ["fe": Self.image("fe", "old"), "be": Self.image("be", "new"), "cache": Self.image("cache", "1")])

            try await Self.finish(setup, j0, .succeeded, plan: Self.plan(Self.job(fe)))
            var stack = try await Self.stack(client, stackId)
            #expect(stack["compose"] as? String == edited, "the edit is the stack's definition")
            #expect(stack["env"] as? [String: String] == ["BE_TAG": "new"])

            // The edit's own deploy fails: the stack stays as the edit left it.
            #expect(try await Self.dispatch(setup) == [j1])
            try await Self.finish(setup, j1, .failed)
            stack = try await Self.stack(client, stackId)
            #expect(stack["compose"] as? String == edited)
            #expect(stack["env"] as? [String: String] == ["BE_TAG": "new"])
            #expect(try await Self.config(client, stackId) == ["fe": Self.image("fe", "old"), "be": Self.image("be", "new"),
                                                                "cache": Self.image("cache", "1")])
        }
    }

    // MARK: an edit that drops a variable plans without it.

    @Test func anEditThatDropsAVariablePlansWithTheEnvItGives() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, _) = try await Self.runningStack(setup, client, env: ["FE_TAG": "v1"])
            #expect(try await Self.config(client, stackId)["fe"] == Self.image("fe", "v1"))
            let (status, put) = try await Self.call(client, .put, "/api/stacks/\(stackId)", json: ["env": [String: String]()])
            #expect(status == .ok)
            let job = try #require(Self.job(put)?["id"] as? String)
            #expect(Self.plan(Self.job(put)) == ["fe": Self.image("fe", "old"), "be": Self.image("be", "old")])
            #expect(try await Self.dispatch(setup) == [job])
            try await Self.finish(setup, job, .succeeded, plan: Self.plan(Self.job(put)))
            #expect(try await Self.config(client, stackId) == ["fe": Self.image("fe", "old"), "be": Self.image("be", "old")],
                    "nothing pinned: the env says what runs")
        }
    }
}
