import Foundation
import Synchronization
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// An agent key stops counting the moment it is replaced or its environment deleted, even on a
/// connection that stays open; and two connections with one key never both run a job.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LinkKeyRevocationTests {
    /// How an agent's `run()` ended: "returned", or the error's description; nil while it runs.
    final class Outcome: Sendable {
        private let value = Mutex<String?>(nil)
        func set(_ text: String) { value.withLock { $0 = text } }
        func withLock<T>(_ body: (inout String?) -> T) -> T { value.withLock { body(&$0) } }
    }

    private func watch(_ task: Task<Void, any Error>) -> Outcome {
        let outcome = Outcome()
        Task {
            do {
                try await task.value
                outcome.set("returned")
            } catch {
                outcome.set("\(error)")
            }
        }
        return outcome
    }

    private func runs(_ file: URL) -> [Substring] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Enrols a new key in an environment the way `POST /api/agents/enrol` does after a new join token.
    private func enrolAgain(_ harness: LinkHarness, environmentId: String) async throws -> CurveKeyPair {
        let token = try await harness.store.createJoinToken(environmentId: environmentId)
        let pair = try CurveKeyPair.generate()
        _ = try await harness.store.enrol(joinToken: token, publicKey: pair.publicKey.z85, hostname: "host-b", version: "test")
        harness.keys.enrol(key: pair.publicKey, environmentId: environmentId)
        await harness.dispatcher.revalidate(environmentId: environmentId)
        return pair
    }

    @Test func anAgentWhoseKeyWasReplacedGetsNoJobsAndStops() async throws {
        let harness = try await LinkHarness()
        let (environment, oldPair) = try await harness.enrolledEnvironment()
        let runsA = harness.directory.appendingPathComponent("runs-a.log")
        let runsB = harness.directory.appendingPathComponent("runs-b.log")
        let (_, agentA) = try harness.agent(keys: oldPair, delay: .milliseconds(700), journal: runsA)
        let outcomeA = watch(agentA)
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })

        // Host B enrols with a new join token; host A's connection is still open and pinging.
        let newPair = try await enrolAgain(harness, environmentId: environment.id)
        let (_, agentB) = try harness.agent(keys: newPair, delay: .milliseconds(700), journal: runsB)
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })
        // Long enough for A's pings (every 2 s) to reach the server while B is connected: before the
        // fix, each made A say hello again and take the session (and B's jobs) back.
        try await Task.sleep(for: .seconds(3))

        var ids: [String] = []
        for index in 0..<3 {
            let (stack, first) = try await harness.stack("s\(index)", on: environment.id)
            ids.append(first.id)
            for n in 1..<4 {
                ids.append(try await harness.redeploy(stack.id, environmentId: environment.id, variables: ["N": "\(n)"]).id)
            }
        }
        for id in ids {
            #expect(try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(60)).state == .succeeded)
        }
        #expect(runs(runsA).isEmpty, "the revoked host ran jobs: \(runs(runsA))")
        #expect(runs(runsB).count == ids.count)
        // A was told, and stopped with the error rather than looping on its open connection.
        #expect(await eventually { outcomeA.withLock { $0 } != nil })
        #expect(outcomeA.withLock { $0 }?.contains("agent_revoked") == true, "agent A ended with \(String(describing: outcomeA.withLock { $0 }))")
        agentB.cancel()
        await harness.stop()
    }

    @Test func aRevokedAgentLetsItsRunningJobEndAndDropsTheJobsItHadNotStarted() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let data = harness.directory.appendingPathComponent("agent-a")
        let ran = harness.directory.appendingPathComponent("runs-a.log")
        // Both stacks' jobs are queued before the agent connects, and a job takes 10 s, so that the
        // revocation's own writes land while the first runs even on a loaded machine.
        _ = try await harness.stack("first", on: environment.id)
        _ = try await harness.stack("second", on: environment.id)
        // One stack at a time: of two stacks' jobs, one runs and the other waits in the journal.
        let (_, agent) = try harness.agent(keys: pair, delay: .seconds(10), journal: ran, dataDirectory: data, maxConcurrentStacks: 1)
        let outcome = watch(agent)
        let journal = try JobJournal(dataDirectory: data)
        #expect(await eventually { journal.heldJobs().count == 2 }, "the agent took both jobs")

        _ = try await enrolAgain(harness, environmentId: environment.id)
        #expect(await eventually(timeout: .seconds(40)) { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0 }?.contains("agent_revoked") == true, "\(String(describing: outcome.withLock { $0 }))")
        // The running job ended as at a stop (its result is kept); the waiting one, whose spec may
        // carry registry credentials, is not left on this host for a key that will not run it.
        #expect(runs(ran).count == 1)
        #expect(journal.heldJobs().isEmpty, "\(journal.heldJobs().map(\.id))")
        #expect(journal.pendingResults().count == 1)
        await harness.stop()
    }

    @Test func anAgentOfADeletedEnvironmentIsDroppedAndStops() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (_, agent) = try harness.agent(keys: pair)
        let outcome = watch(agent)
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })

        // What `DELETE /api/environments/{id}` does.
        try await harness.store.deleteEnvironment(id: environment.id)
        harness.keys.remove(environmentId: environment.id)
        await harness.dispatcher.forget(environmentId: environment.id)

        #expect(await eventually { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0 }?.contains("agent_revoked") == true, "the agent ended with \(String(describing: outcome.withLock { $0 }))")
        // Its pings and hellos did not bring the session back.
        #expect(await !harness.dispatcher.isConnected(environment.id))
        agent.cancel()
        await harness.stop()
    }

    @Test func aSecondConnectionWithOneKeyTakesOverAndNoJobRunsOnBoth() async throws {
        // A copied data directory: two hosts, one key. The later hello takes the environment; the
        // earlier agent is told `agent_superseded`, lets what it runs end and report, and stops. A
        // short resend (1 s, against 3-s jobs) would send a job the earlier agent runs to the later
        // one if its jobs were not kept its own until it said goodbye. The jobs are queued before
        // host A connects, and each takes 3 s, so that host B connects while A still has work left
        // (12 s of it) however slowly a loaded machine goes.
        let harness = try await LinkHarness(resendAfter: .seconds(1))
        let (environment, pair) = try await harness.enrolledEnvironment()
        let runsA = harness.directory.appendingPathComponent("runs-a.log")
        let runsB = harness.directory.appendingPathComponent("runs-b.log")
        let dataA = harness.directory.appendingPathComponent("agent-a")
        var ids: [String] = []
        for index in 0..<3 {
            let (stack, first) = try await harness.stack("c\(index)", on: environment.id, env: ["N": "0"])
            ids.append(first.id)
            for n in 1..<4 {
                ids.append(try await harness.redeploy(stack.id, environmentId: environment.id, variables: ["N": "\(n)"]).id)
            }
        }
        let (agentARuntime, agentA) = try harness.agent(keys: pair, delay: .seconds(3), journal: runsA, dataDirectory: dataA)
        let outcomeA = watch(agentA)
        // Host A runs the stacks' first jobs when host B, with the same key, connects.
        #expect(await eventually { await !agentARuntime.isIdle })
        try await Task.sleep(for: .milliseconds(300))
        let (_, agentB) = try harness.agent(keys: pair, delay: .seconds(3), journal: runsB)

        #expect(await eventually(timeout: .seconds(30)) { outcomeA.withLock { $0 } != nil })
        #expect(outcomeA.withLock { $0 }?.contains("agent_superseded") == true, "agent A ended with \(String(describing: outcomeA.withLock { $0 }))")
        for id in ids {
            #expect(try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(90)).state == .succeeded)
        }
        // Each job ran once, on one host: A the ones it had started, B the rest.
        let all = runs(runsA) + runs(runsB)
        #expect(all.count == ids.count && Set(all).count == ids.count, "runs (one line per stack and N): \(all.sorted())")
        #expect(!runs(runsA).isEmpty && !runs(runsB).isEmpty, "A: \(runs(runsA)), B: \(runs(runsB))")
        // A's journal keeps nothing to run at its next start.
        #expect(try JobJournal(dataDirectory: dataA).heldJobs().isEmpty)
        agentB.cancel()
        await harness.stop()
    }

    @Test func aDeadConnectionsJobsGoToTheAgentThatReplacedItOnceItIsSilent() async throws {
        // An agent restarted before the server noticed its old connection die: that connection had
        // acknowledged a job and went silent. The job is not sent again while it might still run
        // there, and goes to the new connection once the old one is silent for `agentTimeout`:
        // 5 s, once the new agent has said hello (before that, a loaded machine's slow setup must
        // not drop the old connection).
        let harness = try await LinkHarness(agentTimeout: .seconds(600))
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (_, job) = try await harness.stack("held-by-old", on: environment.id)
        let context = try ZMQContext()
        let old = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.makeCurveClient(keyPair: pair, serverKey: harness.serverKeys.publicKey)
            try socket.connect(harness.dispatcher.endpoint)
        }
        _ = try await old.send([WireCodec.encode(.hello(AgentHello(
            agentVersion: "t", hostname: "old", dockerVersion: "-", composeFlavour: "plugin", composeVersion: "-",
            edge: false, holding: [], results: [])))])
        var incoming = old.incoming.makeAsyncIterator()
        while let message = await incoming.next() {
            if case .job(let spec) = try WireCodec.decodeServerMessage(message.frames[0]), spec.id == job.id { break }
        }
        // The old connection's silence counts from its ack, which the server hears after this.
        let started = ContinuousClock.now
        _ = try await old.send([WireCodec.encode(.ack(jobId: job.id))])
        try await Task.sleep(for: .milliseconds(200))

        let runs = harness.directory.appendingPathComponent("runs-new.log")
        let (_, agent) = try harness.agent(keys: pair, journal: runs)
        // The old connection is told it was replaced…
        var told = false
        while let message = await incoming.next() {
            if case .error(let code, _) = try WireCodec.decodeServerMessage(message.frames[0]), code == "agent_superseded" {
                told = true
                break
            }
        }
        #expect(told)
        // …and the job it holds goes to the new agent only after it has been silent for 5 s.
        await harness.dispatcher.retime { $0.agentTimeout = .seconds(5) }
        #expect(try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(40)).state == .succeeded)
        #expect(ContinuousClock.now - started >= .seconds(5), "the job went to the new agent after \(ContinuousClock.now - started)")
        #expect(self.runs(runs).count == 1)
        await old.shutdown()
        agent.cancel()
        await harness.stop()
    }
}
