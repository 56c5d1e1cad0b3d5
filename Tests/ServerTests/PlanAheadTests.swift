import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
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
        let api = harness.makeAPI(publicURL: "http://wharf.test", adminToken: adminToken, label: "plan-test", logLevel: .warning)
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

    // MARK: A deploy queued behind one in flight plans on it, not on the stack as committed.

    @Test func aStackBeingRemovedTakesNoNewDeployAndIsGoneWhenItsRemoveSucceeds() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            let (deleted, removal) = try await Self.call(client, .delete, "/api/stacks/\(stackId)")
            #expect(deleted == .accepted)
            let removeId = try #require(Self.job(removal)?["id"] as? String)

            // A webhook, a redeploy and an edit would each queue a deploy behind the remove.
            let (hooked, hookBody) = try await Self.call(client, .post, path + "?FE_TAG=new")
            #expect(hooked == .conflict)
            #expect((hookBody["error"] as? [String: Any])?["code"] as? String == "stack_removing", "\(hookBody)")
            #expect(try await Self.call(client, .post, "/api/stacks/\(stackId)/redeploy").0 == .conflict)
            let (edited, _) = try await Self.call(client, .put, "/api/stacks/\(stackId)", json: ["compose": Self.compose, "env": ["FE_TAG": "x"]])
            #expect(edited == .conflict)
            #expect(try await Self.stack(client, stackId)["env"] as? [String: String] ?? [:] == [:], "the refused edit changed nothing")
            let (_, jobs) = try await Self.call(client, .get, "/api/jobs?stackId=\(stackId)")
            #expect((jobs["jobs"] as? [[String: Any]])?.count == 2, "the first deploy and the remove, nothing behind it")

            #expect(try await Self.dispatch(setup) == [removeId])
            try await Self.finish(setup, removeId, .succeeded)
            #expect(try await Self.call(client, .get, "/api/stacks/\(stackId)").0 == .notFound)
        }
    }

    @Test func aDeployQueuedBeforeARemoveTakesNoMoreCallsInMemory() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            // No agent: the deploy stays queued, and the same call again joins it in memory.
            let (_, queued) = try await Self.call(client, .post, path + "?FE_TAG=new")
            let deployId = try #require(Self.job(queued)?["id"] as? String)
            let (joined, joinedBody) = try await Self.call(client, .post, path + "?FE_TAG=new")
            #expect(joined == .accepted && Self.job(joinedBody)?["id"] as? String == deployId)
            #expect(try await Self.call(client, .delete, "/api/stacks/\(stackId)").0 == .accepted)

            // Joining the deploy ahead of the remove would still be answered with a 202 for a stack
            // about to be deleted.
            let (again, body) = try await Self.call(client, .post, path + "?FE_TAG=new")
            #expect(again == .conflict, "\(body)")
            #expect((body["error"] as? [String: Any])?["code"] as? String == "stack_removing", "\(body)")
            #expect(try await Self.call(client, .post, "/api/stacks/\(stackId)/redeploy").0 == .conflict)
            let (_, job) = try await Self.call(client, .get, "/api/jobs/\(deployId)")
            #expect(Self.job(job)?["coalesced"] as? Int == 1, "only the call before the remove joined")
        }
    }

    @Test func aDeployInTheSameGroupCommitAsARemoveOfItsStackIsRefused() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, _) = try await Self.runningStack(setup, client)
            let (other, _) = try await Self.call(client, .post, "/api/stacks",
                                                 json: ["name": "other", "environmentId": setup.environmentId, "compose": Self.compose])
            #expect(other == .created)
            let otherId = try #require(try await Self.call(client, .get, "/api/stacks").1["stacks"] as? [[String: Any]])
                .compactMap { $0["name"] as? String == "other" ? $0["id"] as? String : nil }.first
            let store = setup.harness.store
            func deploy(_ tag: String) -> JobRequest {
                JobRequest(kind: .deploy, variables: ["FE_TAG": tag], plan: [PlannedService(name: "fe", image: "127.0.0.1:5000/demo/fe:\(tag)")],
                           trigger: JobTrigger(source: "webhook"))
            }
            // Hold the writer; a first request takes the next batch and waits; the remove and then a
            // deploy of its stack pile up behind it and go together in the batch after.
            let writer = try await HeldWriter(store)
            let first = Task { try await store.enqueueJob(stackId: try #require(otherId), request: deploy("first"), claimingFor: nil) }
            while store.enqueues.withLock({ !$0.writing || !$0.waiting.isEmpty }) { try await Task.sleep(for: .milliseconds(1)) }
            let remove = Task {
                try await store.enqueueJob(stackId: stackId, request: JobRequest(kind: .remove, plan: [], pull: false,
                                                                                 trigger: JobTrigger(source: "api"), coalesce: false),
                                           claimingFor: nil)
            }
            while store.enqueues.withLock({ $0.waiting.count < 1 }) { try await Task.sleep(for: .milliseconds(1)) }
            let late = Task { try await store.enqueueJob(stackId: stackId, request: deploy("late"), claimingFor: nil) }
            while store.enqueues.withLock({ $0.waiting.count < 2 }) { try await Task.sleep(for: .milliseconds(1)) }
            try await writer.release()
            _ = try await first.value

            let removeId = try await remove.value.job.id
            await #expect(throws: StoreError.stackRemoving) { try await late.value }
            #expect(try await Self.stack(client, stackId)["status"] as? String == "removing")
            #expect(try await Self.dispatch(setup).contains(removeId))
            try await Self.finish(setup, removeId, .succeeded)
            #expect(try await Self.call(client, .get, "/api/stacks/\(stackId)").0 == .notFound, "nothing queued behind the remove")
        }
    }

    @Test func aStackOfANodeThatIsGoneCanBeForgotten() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            // The node is gone: a deploy and then a remove are queued, and neither can ever run.
            let (_, queued) = try await Self.call(client, .post, path + "?FE_TAG=new")
            let deployId = try #require(Self.job(queued)?["id"] as? String)
            #expect(try await Self.call(client, .post, path).0 == .accepted, "joins the queued deploy in memory")
            let (_, removal) = try await Self.call(client, .delete, "/api/stacks/\(stackId)")
            let removeId = try #require(Self.job(removal)?["id"] as? String)

            #expect(try await Self.call(client, .delete, "/api/stacks/\(stackId)?forget=maybe").0 == .badRequest)
            let (status, forgotten) = try await Self.call(client, .delete, "/api/stacks/\(stackId)?forget=true")
            #expect(status == .ok)
            #expect(forgotten["endedJobs"] as? [String] == [deployId, removeId].sorted(), "\(forgotten)")
            #expect(try await Self.call(client, .get, "/api/stacks/\(stackId)").0 == .notFound)
            #expect(try await Self.call(client, .post, path).0 == .notFound, "its webhook is gone")
            for id in [deployId, removeId] {
                let (_, body) = try await Self.call(client, .get, "/api/jobs/\(id)")
                let job = try #require(Self.job(body))
                #expect(job["state"] as? String == "failed")
                #expect((job["error"] as? [String: Any])?["code"] as? String == "stack_forgotten")
                if id == deployId { #expect(job["coalesced"] as? Int == 1, "the call joined in memory is counted") }
            }
            // With its only stack forgotten, the environment can be deleted.
            #expect(try await Self.call(client, .delete, "/api/environments/\(setup.environmentId)").0 == .noContent)
            #expect(try await Self.call(client, .delete, "/api/stacks/\(stackId)?forget=true").0 == .notFound)
        }
    }

    @Test func aStackWhoseRemoveFailedDeploysAgain() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            let (_, removal) = try await Self.call(client, .delete, "/api/stacks/\(stackId)")
            let removeId = try #require(Self.job(removal)?["id"] as? String)
            #expect(try await Self.dispatch(setup) == [removeId])
            try await Self.finish(setup, removeId, .failed)
            #expect(try await Self.call(client, .post, path + "?FE_TAG=new").0 == .accepted)
        }
    }

    @Test func aPushWhileThePreviousDeployIsInFlightKeepsThatDeploysImage() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            let registry = "application/vnd.docker.distribution.events.v1+json"
            let (fePushed, fe) = try await Self.call(client, .post, path, contentType: registry,
                                                     body: Self.registryPush("demo/fe", "abc", id: "evt-fe"))
            #expect(fePushed == .accepted)
            let j0 = try #require(Self.job(fe)?["id"] as? String)
            #expect(try await Self.dispatch(setup) == [j0], "the fe push is on its way to the agent")

            let (_, be) = try await Self.call(client, .post, path, contentType: registry, body: Self.registryPush("demo/be", "def", id: "evt-be"))
            let j1 = try #require(Self.job(be)?["id"] as? String)
            #expect(j1 != j0, "the job in flight is not joined")
            #expect(Self.plan(Self.job(be)) == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "def")],
                    "the be push keeps the fe image the deploy ahead of it deploys")

            try await Self.finish(setup, j0, .succeeded, plan: ["fe": Self.image("fe", "abc"), "be": Self.image("be", "old")])
            #expect(try await Self.dispatch(setup) == [j1])
            try await Self.finish(setup, j1, .succeeded, plan: Self.plan(Self.job(be)))
            #expect(try await Self.config(client, stackId) == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "def")],
                    "both pushes are deployed and stay")
        }
    }

    @Test func thePreviewOfAnEditShowsWhatThePutDeploysPinsIncluded() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            // A push pins fe to abc.
            let (_, pushed) = try await Self.call(client, .post, path, contentType: "application/vnd.docker.distribution.events.v1+json",
                                                  body: Self.registryPush("demo/fe", "abc", id: "evt-pin"))
            let pin = try #require(Self.job(pushed)?["id"] as? String)
            #expect(try await Self.dispatch(setup) == [pin])
            try await Self.finish(setup, pin, .succeeded, plan: Self.plan(Self.job(pushed)))

            func preview(_ body: [String: Any]) async throws -> (HTTPResponse.Status, [String: String]) {
                let (status, rendered) = try await Self.call(client, .post, "/api/stacks/\(stackId)/config", json: body)
                let services = rendered["services"] as? [[String: String]] ?? []
                return (status, Dictionary(services.map { ($0["name"] ?? "", $0["image"] ?? "") }, uniquingKeysWith: { $1 }))
            }
            // An edit of an unrelated variable keeps the pin; one that moves be shows be moved.
            let (shown, images) = try await preview(["compose": Self.compose, "env": ["OTHER": "1", "BE_TAG": "new"]])
            #expect(shown == .ok)
            #expect(images == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "new")])
            // A new compose file drops the pins.
            let (_, fresh) = try await preview(["compose": Self.compose + "\n", "env": [String: String]()])
            #expect(fresh == ["fe": Self.image("fe", "old"), "be": Self.image("be", "old")])
            // A variable the server refuses, and a broken file: 422, like /api/compose/render.
            #expect(try await preview(["compose": Self.compose, "env": ["COMPOSE_FILE": "x"]]).0 == .unprocessableContent)
            #expect(try await preview(["compose": "services: [", "env": [String: String]()]).0 == .unprocessableContent)
            #expect(try await Self.call(client, .post, "/api/stacks/stk_nope/config", json: ["compose": Self.compose]).0 == .notFound)

            // Nothing was written; the update itself deploys what the preview showed.
            let (_, jobs) = try await Self.call(client, .get, "/api/jobs?stackId=\(stackId)")
            #expect((jobs["jobs"] as? [[String: Any]])?.count == 2)
            let (updated, body) = try await Self.call(client, .put, "/api/stacks/\(stackId)", json: ["compose": Self.compose, "env": ["OTHER": "1", "BE_TAG": "new"]])
            #expect(updated == .ok)
            #expect(Self.plan(Self.job(body)) == images)
        }
    }

    @Test func variablesAndARedeployBehindADeployInFlightCarryItsVariables() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            let (_, fe) = try await Self.call(client, .post, path + "?FE_TAG=abc")
            let j0 = try #require(Self.job(fe)?["id"] as? String)
            #expect(try await Self.dispatch(setup) == [j0])

            let (_, be) = try await Self.call(client, .post, path + "?BE_TAG=def")
            let j1 = try #require(Self.job(be)?["id"] as? String)
            #expect(j1 != j0)
            #expect(Self.plan(Self.job(be)) == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "def")])
            let record = try await setup.harness.store.job(id: j1)
            #expect(record.env == ["FE_TAG": "abc", "BE_TAG": "def"], "what the agent runs compose with")

            // The first deploy fails; the one behind it still deploys both, and its success makes both the stack's.
            try await Self.finish(setup, j0, .rolledBack)
            #expect(try await Self.dispatch(setup) == [j1])
            // A redeploy asked for while that one is in flight deploys what it deploys.
            let (redeployed, again) = try await Self.call(client, .post, "/api/stacks/\(stackId)/redeploy")
            #expect(redeployed == .accepted)
            let j2 = try #require(Self.job(again)?["id"] as? String)
            #expect(Self.plan(Self.job(again)) == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "def")])
            #expect(try await setup.harness.store.job(id: j2).env == ["FE_TAG": "abc", "BE_TAG": "def"])

            try await Self.finish(setup, j1, .succeeded, plan: Self.plan(Self.job(be)))
            #expect(try await Self.stack(client, stackId)["env"] as? [String: String] == ["FE_TAG": "abc", "BE_TAG": "def"])
            #expect(try await Self.dispatch(setup) == [j2])
            try await Self.finish(setup, j2, .succeeded, plan: Self.plan(Self.job(again)))
            #expect(try await Self.config(client, stackId) == ["fe": Self.image("fe", "abc"), "be": Self.image("be", "def")])
        }
    }

    // MARK: A job's success does not overwrite an edit made after it was queued.

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

    // MARK: An edit that drops a variable plans without it.

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

    // MARK: A call joining a queued deploy is planned on that deploy's env.

    @Test func aCallThatJoinsSetsTheImagesItsVariablesGiveUnderTheQueuedJobsEnv() async throws {
        try await Self.withAPI { setup, client in
            let (stackId, path) = try await Self.runningStack(setup, client)
            // No agent: the job stays queued, and the second call joins it.
            let (_, development) = try await Self.call(client, .post, path + "?FE_TAG=development")
            let job = try #require(Self.job(development)?["id"] as? String)
            #expect(Self.plan(Self.job(development))["fe"] == Self.image("fe", "development"))
            let (_, back) = try await Self.call(client, .post, path + "?FE_TAG=old")
            #expect(Self.job(back)?["id"] as? String == job)
            #expect(Self.job(back)?["coalesced"] as? Int == 1)
            #expect(Self.plan(Self.job(back)) == ["fe": Self.image("fe", "old"), "be": Self.image("be", "old")],
                    "the newest value of FE_TAG decides fe's image")
            #expect(try await setup.harness.store.job(id: job).env == ["FE_TAG": "old"])
            #expect(try await Self.dispatch(setup) == [job])
            try await Self.finish(setup, job, .succeeded, plan: Self.plan(Self.job(back)))
            #expect(try await Self.config(client, stackId)["fe"] == Self.image("fe", "old"))
        }
    }

    @Test func aCallThatMakesTheQueuedJobsComposeInvalidIsRefusedWith422() async throws {
        try await Self.withAPI { setup, client in
            let compose = "services:\n  web:\n    image: 127.0.0.1:5000/demo/web:${A:-a}${B:-b}\n"
            let (_, created) = try await Self.call(client, .post, "/api/stacks",
                                                   json: ["name": "app", "environmentId": setup.environmentId, "compose": compose])
            let stackId = try #require((created["stack"] as? [String: Any])?["id"] as? String)
            let (_, hook) = try await Self.call(client, .post, "/api/stacks/\(stackId)/webhook")
            let path = String(try #require(hook["url"] as? String).dropFirst("http://wharf.test".count))
            // Each tag alone is valid (101 characters); with both variables it is 200, over Docker's 128.
            let (first, joined) = try await Self.call(client, .post, path + "?A=" + String(repeating: "a", count: 100))
            #expect(first == .accepted)
            let (second, refused) = try await Self.call(client, .post, path + "?B=" + String(repeating: "b", count: 100))
            #expect(second == .unprocessableContent, "\(refused)")
            #expect(["invalid_image", "invalid_tag"].contains((refused["error"] as? [String: Any])?["code"] as? String ?? ""), "\(refused)")
            let job = try await setup.harness.store.job(id: try #require(Self.job(joined)?["id"] as? String))
            #expect(job.env["B"] == nil && job.job.coalesced == 1, "the queued job is as the first call left it")
        }
    }

    // MARK: The group commit: calls that arrive together behind a deploy in flight.

    @Test func callsArrivingTogetherBehindADeployInFlightMakeOneJobPlannedOnIt() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let old = ["fe": Self.image("fe", "old"), "be": Self.image("be", "old")]
        func request(_ images: [String: String], targeted: Set<String>) -> JobRequest {
            JobRequest(kind: .deploy, plan: images.keys.sorted().map { PlannedService(name: $0, image: images[$0]!) },
                       targeted: targeted, trigger: JobTrigger(source: "registry"))
        }
        let (stack, first) = try await store.createStack(
            name: "app", environmentId: environment.id, compose: Self.compose, env: [:],
            plan: old.keys.sorted().map { PlannedService(name: $0, image: old[$0]!) }, trigger: JobTrigger(source: "api"),
            publicURL: "http://127.0.0.1")
        let claim = [DispatchRequest(environmentId: environment.id, skip: [], capacity: 10)]
        #expect(try await store.claimDispatch(claim).flatMap { $0.jobs.map(\.id) } == [first.id])
        _ = try await ResultOnStackTests.finish(store, first, .succeeded, on: environment.id)
        // The fe push, planned on the stack as it is (as `API.prepare` plans it), goes to the agent.
        var fe = old
        fe["fe"] = Self.image("fe", "abc")
        let j0 = try await store.enqueueJob(stackId: stack.id, request: request(fe, targeted: ["fe"]))

        // Dispatched; then pushes of be (each planned on the stack, whose fe is still old) arrive together.
        #expect(try await store.claimDispatch(claim).flatMap { $0.jobs.map(\.id) } == [j0.id])
        var be = old
        be["be"] = Self.image("be", "def")
        let push = request(be, targeted: ["be"])
        let jobs = try await withThrowingTaskGroup(of: Job.self) { group in
            for _ in 0..<16 { group.addTask { try await store.enqueueJob(stackId: stack.id, request: push) } }
            return try await group.reduce(into: [Job]()) { $0.append($1) }
        }
        #expect(Set(jobs.map(\.id)).count == 1 && jobs.first?.id != j0.id, "one new job behind the one in flight")
        let behind = try await store.job(id: try #require(jobs.first?.id)).job
        #expect(behind.coalesced == 15)
        #expect(behind.plan.services == [PlannedService(name: "be", image: Self.image("be", "def")),
                                         PlannedService(name: "fe", image: Self.image("fe", "abc"))])
    }
}
