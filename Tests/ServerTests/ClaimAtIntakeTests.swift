import Foundation
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// A new job for a connected agent's idle stack is claimed in the transaction that queues it and
/// handed to the dispatcher (`ConnectedAgents`, `Dispatcher.handOver`): real SQLite file, real
/// sockets, a simulated engine.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ClaimAtIntakeTests {
    static func request(_ image: String, variables: [String: String] = [:], coalesce: Bool = true) -> JobRequest {
        JobRequest(kind: .deploy, variables: variables, plan: [PlannedService(name: "web", image: image)],
                   trigger: JobTrigger(source: "webhook"), coalesce: coalesce)
    }

    /// Stacks whose first deploys an agent has run; the agent is stopped again unless `keep`.
    static func idleStacks(_ harness: LinkHarness, count: Int, env: [String: String] = [:], keep: Bool = false)
        async throws -> (Environment, CurveKeyPair, [Stack], Task<Void, any Error>?) {
        let (environment, pair) = try await harness.enrolledEnvironment()
        var stacks: [Stack] = []
        var firsts: [String] = []
        for index in 0..<count {
            let (stack, job) = try await harness.stack("web\(index)", on: environment.id, env: env)
            stacks.append(stack)
            firsts.append(job.id)
        }
        let (_, agent) = try harness.agent(keys: pair)
        for id in firsts {
            #expect(try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(20)).state == .succeeded)
        }
        if keep { return (environment, pair, stacks, agent) }
        agent.cancel()
        _ = try? await agent.value
        return (environment, pair, stacks, nil)
    }

    @Test func aNewJobForAnIdleStackOfAConnectedEnvironmentIsClaimedAsItIsQueued() async throws {
        let harness = try await LinkHarness()
        let (environment, _, stacks, _) = try await Self.idleStacks(harness, count: 2, env: ["A": "1"])
        _ = try await harness.store.addRegistry(url: "127.0.0.1:5000", username: "ci", password: "secret")
        let connected = ConnectedAgents()
        connected.insert(environment.id)

        let first = try await harness.store.enqueueJob(stackId: stacks[0].id, request: Self.request(
            "127.0.0.1:5000/demo/web:v2", variables: ["B": "2"]), claimingFor: connected)
        #expect(first.job.state == .dispatched)
        let spec = try #require(first.claimed)
        #expect(spec.id == first.job.id)
        #expect(spec.stackId == stacks[0].id)
        #expect(spec.images == ["web": "127.0.0.1:5000/demo/web:v2"])
        #expect(spec.env == ["A": "1", "B": "2"])
        #expect(spec.compose == stacks[0].compose)
        #expect(spec.credentials.map(\.registry) == ["127.0.0.1:5000"])
        #expect(try await harness.store.job(id: first.job.id).job.state == .dispatched)
        // Were the hand-over lost, the environment's next round sends the same job (a dispatched head).
        let round = try await harness.store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 10)])
        #expect(round.first?.jobs == [spec])

        // Behind it, the stack's next job waits for a round, and calls join that one as before.
        let second = try await harness.store.enqueueJob(stackId: stacks[0].id, request: Self.request("127.0.0.1:5000/demo/web:v3"),
                                                        claimingFor: connected)
        #expect(second.job.state == .queued)
        #expect(second.claimed == nil)
        let third = try await harness.store.enqueueJob(stackId: stacks[0].id, request: Self.request("127.0.0.1:5000/demo/web:v3"),
                                                       claimingFor: connected)
        #expect(third.job.id == second.job.id)
        #expect(third.job.coalesced == 1)
        #expect(third.claimed == nil)

        // Not connected: queued for a round.
        let away = try await harness.store.enqueueJob(stackId: stacks[1].id, request: Self.request("127.0.0.1:5000/demo/web:v2"),
                                                      claimingFor: ConnectedAgents())
        #expect(away.job.state == .queued)
        #expect(away.claimed == nil)
        await harness.stop()
    }

    @Test func concurrentCallsClaimOneJobPerIdleStack() async throws {
        let harness = try await LinkHarness()
        let (environment, _, stacks, _) = try await Self.idleStacks(harness, count: 12)
        let connected = ConnectedAgents()
        connected.insert(environment.id)
        let results = try await withThrowingTaskGroup(of: Enqueued.self) { group in
            for call in 0..<240 {
                let stack = stacks[call % stacks.count]
                group.addTask {
                    try await harness.store.enqueueJob(stackId: stack.id, request: Self.request(
                        "127.0.0.1:5000/demo/web:v\(call % 3)", coalesce: call % 5 != 0), claimingFor: connected)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for stack in stacks {
            let mine = results.filter { $0.job.stackId == stack.id }
            let claimed = mine.filter { $0.claimed != nil }
            #expect(claimed.count == 1, "stack \(stack.name): \(claimed.count) claimed")
            #expect(claimed.allSatisfy { $0.job.state == .dispatched && $0.claimed?.id == $0.job.id })
            #expect(mine.filter { $0.claimed == nil }.allSatisfy { $0.job.state == .queued })
            let onDisk = try await harness.store.jobs(stackId: stack.id, state: .dispatched, limit: 100)
            #expect(onDisk.map(\.id) == claimed.map(\.job.id))
        }
        await harness.stop()
    }

    @Test func aHandedOverJobReachesItsConnectedAgentAndEndsSucceeded() async throws {
        let harness = try await LinkHarness()
        let (environment, _, stacks, agent) = try await Self.idleStacks(harness, count: 1, keep: true)
        #expect(await eventually { harness.dispatcher.connectedAgents.contains(environment.id) })
        let enqueued = try await harness.store.enqueueJob(stackId: stacks[0].id, request: Self.request("127.0.0.1:5000/demo/web:v2"),
                                                          claimingFor: harness.dispatcher.connectedAgents)
        #expect(enqueued.claimed != nil)
        harness.dispatcher.handOver(enqueued, environmentId: environment.id)
        let ended = try await harness.dispatcher.waitForFinish(jobId: enqueued.job.id, timeout: .seconds(20))
        #expect(ended.state == .succeeded)
        #expect(ended.result?.services.first?.image == "127.0.0.1:5000/demo/web:v2")
        agent?.cancel()
        await harness.stop()
    }

    @Test func aClaimedJobWhoseAgentWentAwayGoesOutAfterItsNextHello() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (stack, first) = try await harness.stack("web", on: environment.id)
        let dataDirectory = harness.directory.appendingPathComponent("agent-data")
        let (_, agent) = try harness.agent(keys: pair, dataDirectory: dataDirectory)
        #expect(try await harness.dispatcher.waitForFinish(jobId: first.id, timeout: .seconds(20)).state == .succeeded)
        #expect(harness.dispatcher.connectedAgents.contains(environment.id))
        agent.cancel()
        _ = try? await agent.value
        #expect(await eventually(timeout: .seconds(15)) { await !harness.dispatcher.isConnected(environment.id) })
        #expect(!harness.dispatcher.connectedAgents.contains(environment.id))

        // The set a moment behind the sessions: the job is claimed, but no session takes it.
        let stale = ConnectedAgents()
        stale.insert(environment.id)
        let enqueued = try await harness.store.enqueueJob(stackId: stack.id, request: Self.request("127.0.0.1:5000/demo/web:v2"),
                                                          claimingFor: stale)
        #expect(enqueued.claimed != nil)
        harness.dispatcher.handOver(enqueued, environmentId: environment.id)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await harness.store.job(id: enqueued.job.id).job.state == .dispatched)

        let (_, again) = try harness.agent(keys: pair, dataDirectory: dataDirectory)
        #expect(try await harness.dispatcher.waitForFinish(jobId: enqueued.job.id, timeout: .seconds(20)).state == .succeeded)
        again.cancel()
        await harness.stop()
    }

    @Test func anEdgeAgentsEnvironmentIsNotClaimedFor() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (_, agent) = try harness.agent(keys: pair, edge: true, checkin: .milliseconds(200))
        // Sampled while its check-ins come and go: never in the set, whether connected or not.
        var connectedSeen = 0
        for _ in 0..<100 {
            if await harness.dispatcher.isConnected(environment.id) { connectedSeen += 1 }
            #expect(!harness.dispatcher.connectedAgents.contains(environment.id))
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(connectedSeen > 0)
        agent.cancel()
        await harness.stop()
    }
}
