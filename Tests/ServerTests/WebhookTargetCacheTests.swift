import Foundation
import Testing
import WharfProtocol
@testable import WharfServer

/// The in-memory token → stack lookup of webhook calls, against a real SQLite file: it must never
/// answer with a token or a plan input that a committed write has changed.
@Suite(.timeLimit(.minutes(2)))
struct WebhookTargetCacheTests {
    static let publicURL = "http://127.0.0.1"

    static func succeed(_ store: SQLiteStore, _ job: Job, environmentId: String) async throws {
        var batch = AgentBatch()
        batch.results = [.init(result: JobResult(jobId: job.id, state: .succeeded, services: [
            ServiceResult(name: "web", image: job.plan.services[0].image, imageId: "sha256:1", containers: 1)]),
                               environmentId: environmentId)]
        _ = try await store.applyAgentBatch(batch, at: Date())
    }

    @Test func rotationEditsAndSuccessfulTriggersAreSeenByTheNextCall() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, first) = try await StoreBatchingTests.stack(store, "app", on: environment.id)
        try await Self.succeed(store, first, environmentId: environment.id)
        let token = UUID().uuidString.lowercased()
        _ = try await store.setWebhookToken(stackId: stack.id, token: token, publicURL: Self.publicURL)

        let read = try #require(try await store.stack(webhookToken: token, publicURL: Self.publicURL))
        #expect(read.stack.id == stack.id && read.pins.isEmpty)
        #expect(store.webhookTargets.count == 1, "a used token is remembered")

        // A job queued and finished without changing env or pins keeps the entry.
        let job = try await store.enqueueJob(stackId: stack.id, request: StoreBatchingTests.request("demo/web:v1"))
        try await Self.succeed(store, job, environmentId: environment.id)
        #expect(store.webhookTargets.count == 1)

        // A trigger's tag becomes a pin when its job succeeds: the next call plans with it.
        let tagged = try await store.enqueueJob(stackId: stack.id, request: JobRequest(
            kind: .deploy, variables: ["MODE": "fast"], plan: [PlannedService(name: "web", image: "demo/web:v9")],
            trigger: JobTrigger(source: "webhook", params: ["tag": "v9", "MODE": "fast"])))
        #expect(try await store.stack(webhookToken: token, publicURL: Self.publicURL)?.pins.isEmpty == true, "not before it succeeds")
        try await Self.succeed(store, tagged, environmentId: environment.id)
        let pinned = try #require(try await store.stack(webhookToken: token, publicURL: Self.publicURL))
        #expect(pinned.pins == ["web": "demo/web:v9"])
        #expect(pinned.stack.env == ["MODE": "fast"])
        // The same again: env, compose and pins as the stack has them (all three compared, none
        // rewritten), so the entry stays.
        let same = try await store.enqueueJob(stackId: stack.id, request: JobRequest(
            kind: .deploy, variables: ["MODE": "fast"], plan: [PlannedService(name: "web", image: "demo/web:v9")],
            trigger: JobTrigger(source: "webhook", params: ["tag": "v9"])))
        try await Self.succeed(store, same, environmentId: environment.id)
        #expect(store.webhookTargets.count == 1, "a deploy that changed nothing of the definition keeps the entry")

        // Editing the stack is seen at once.
        _ = try await store.updateStack(id: stack.id, compose: "services:\n  web:\n    image: demo/web:v2\n", env: ["MODE": "slow"],
                                        clearPins: true, request: StoreBatchingTests.request("demo/web:v2"))
        let edited = try #require(try await store.stack(webhookToken: token, publicURL: Self.publicURL))
        #expect(edited.stack.compose.contains("demo/web:v2") && edited.stack.env == ["MODE": "slow"] && edited.pins.isEmpty)

        // Rotation and disabling: the old token is unknown from the next call on.
        let rotated = UUID().uuidString.lowercased()
        _ = try await store.setWebhookToken(stackId: stack.id, token: rotated, publicURL: Self.publicURL)
        #expect(try await store.stack(webhookToken: token, publicURL: Self.publicURL) == nil)
        #expect(try await store.stack(webhookToken: rotated, publicURL: Self.publicURL)?.stack.id == stack.id)
        _ = try await store.setWebhookToken(stackId: stack.id, token: nil, publicURL: Self.publicURL)
        #expect(try await store.stack(webhookToken: rotated, publicURL: Self.publicURL) == nil)
        #expect(store.webhookTargets.count == 0, "unknown tokens are not remembered")
    }

    @Test func aReadThatRacedWithAnInvalidationDoesNotFill() {
        let cache = WebhookTargetCache(capacity: 2)
        let stack = Stack(id: "stk_1", name: "app", environmentId: "env_1", compose: "", env: [:], status: .running,
                          webhook: nil, lastJobId: nil, services: [], createdAt: Date(), updatedAt: Date())
        #expect(cache.lookup("a") == nil)
        let before = cache.generation
        cache.invalidate(rows: [99])  // a commit on another row, while "a" was being read
        cache.fill("a", .init(rowID: 1, stack: stack, pins: [:], publicURL: ""), readAt: before)
        #expect(cache.count == 0)
        let now = cache.generation
        cache.fill("a", .init(rowID: 1, stack: stack, pins: [:], publicURL: ""), readAt: now)
        #expect(cache.count == 1)
        // A token rotated on the same row replaces the old one; capacity bounds the rest.
        cache.fill("b", .init(rowID: 1, stack: stack, pins: [:], publicURL: ""), readAt: now)
        #expect(cache.lookup("a") == nil, "the row's old token is still cached")
        cache.fill("c", .init(rowID: 2, stack: stack, pins: [:], publicURL: ""), readAt: now)
        #expect(cache.count == 2)
        cache.invalidate(rows: [1])
        #expect(cache.count == 1 && cache.lookup("b") == nil && cache.lookup("c") != nil)
        // Full: a new token still gets in (the cache starts again), so a token that gets hot later is not locked out.
        let later = cache.generation
        cache.fill("d", .init(rowID: 3, stack: stack, pins: [:], publicURL: ""), readAt: later)
        cache.fill("e", .init(rowID: 4, stack: stack, pins: [:], publicURL: ""), readAt: later)
        #expect(cache.lookup("e") != nil && cache.count <= 2)
        for _ in 0..<10 { cache.fill("e", .init(rowID: 4, stack: stack, pins: [:], publicURL: ""), readAt: later) }
        #expect(cache.lookup("e") != nil, "refilling what is cached does not empty it")
    }
}
