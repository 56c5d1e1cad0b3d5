import Foundation
import GRDB
import Synchronization
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// The server⇄agent link end to end in one process: real sockets, a real SQLite file, a simulated engine.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LinkDeliveryTests {
    @Test func aQueuedJobReachesItsAgentAndEndsSucceeded() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (stack, job) = try await harness.stack("web", on: environment.id)
        #expect(job.state == .queued)
        let (_, agent) = try harness.agent(keys: pair)
        let ended = try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20))
        #expect(ended.state == .succeeded)
        #expect(ended.result?.services.first?.image == "127.0.0.1:5000/demo/web:v1")
        let updated = try await harness.store.stack(id: stack.id, publicURL: "")
        #expect(updated.status == .running)
        #expect(updated.services.map(\.name) == ["web"])
        #expect(await harness.dispatcher.isConnected(environment.id))
        let seen = try await harness.store.environment(id: environment.id)
        #expect(seen.agent?.hostname == "agent-test")
        #expect(seen.lastSeenAt != nil)
        let log = try await harness.store.jobLog(jobId: job.id)
        #expect(log.contains("simulated deploy of web"))
        agent.cancel()
        await harness.stop()
    }

    @Test func jobsQueuedWhileTheAgentIsAwayAreDeliveredOnConnectInOrderExactlyOnce() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (stack, first) = try await harness.stack("ordered", on: environment.id, env: ["N": "0"])
        var ids = [first.id]
        for n in 1..<20 {
            ids.append(try await harness.redeploy(stack.id, environmentId: environment.id, variables: ["N": "\(n)"]).id)
        }
        let journal = harness.directory.appendingPathComponent("runs.log")
        let (_, agent) = try harness.agent(keys: pair, journal: journal)
        #expect(try await eventually { try await harness.store.jobs(stackId: stack.id, state: nil, limit: 100).allSatisfy { $0.state == .succeeded } })
        let runs = try String(contentsOf: journal, encoding: .utf8).split(separator: "\n")
        #expect(runs.count == 20)
        let jobs = try await harness.store.jobs(stackId: stack.id, state: nil, limit: 100).sorted { $0.createdAt < $1.createdAt }
        // Finished in queue order: each job started after the one before it finished.
        for (earlier, later) in zip(jobs, jobs.dropFirst()) {
            #expect(earlier.finishedAt! <= later.startedAt!)
        }
        #expect(Set(jobs.map(\.id)) == Set(ids))
        agent.cancel()
        await harness.stop()
    }

    @Test func moreJobsThanRoomInFlightAllGoOutAsResultsMakeRoom() async throws {
        // Room for 3 unacknowledged jobs: the first round fills it, and the results of those jobs
        // (whose stacks have nothing else queued) must still bring the rounds for the other stacks.
        let harness = try await LinkHarness(maxInFlight: 3)
        let (environment, pair) = try await harness.enrolledEnvironment()
        var ids: [String] = []
        for index in 0..<10 { ids.append(try await harness.stack("room\(index)", on: environment.id).1.id) }
        let (_, agent) = try harness.agent(keys: pair, delay: .milliseconds(20))
        for id in ids {
            #expect(try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(20)).state == .succeeded)
        }
        agent.cancel()
        await harness.stop()
    }

    @Test func disconnectIsSeenAndJobsWaitForTheNextConnection() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let dataDirectory = harness.directory.appendingPathComponent("agent-data")
        let (_, agent) = try harness.agent(keys: pair, dataDirectory: dataDirectory)
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })
        agent.cancel()
        _ = try? await agent.value
        #expect(await eventually(timeout: .seconds(15)) { await !harness.dispatcher.isConnected(environment.id) })
        let (_, job) = try await harness.stack("later", on: environment.id)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await harness.store.job(id: job.id).job.state == .queued)
        let (_, again) = try harness.agent(keys: pair, dataDirectory: dataDirectory)
        #expect(try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20)).state == .succeeded)
        again.cancel()
        await harness.stop()
    }

    @Test func anAgentWhoseConnectionGoesSilentReconnectsAndGetsItsNextJob() async throws {
        // The server keeps the silent session for 60 s: only the agent can notice, and must.
        let harness = try await LinkHarness(agentTimeout: .seconds(60))
        let serverPort = try #require(harness.dispatcher.endpoint.split(separator: ":").last.flatMap { Int($0) })
        let proxy = try SilentProxy(targetPort: serverPort)
        defer { proxy.stop() }
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (stack, first) = try await harness.stack("quiet", on: environment.id)
        let (_, agent) = try harness.agent(keys: pair, endpoint: proxy.endpoint, serverTimeout: .seconds(3))
        #expect(try await harness.dispatcher.waitForFinish(jobId: first.id, timeout: .seconds(20)).state == .succeeded)

        // The path goes silent: no reset, no close, nothing gets through either way.
        try proxy.silence()
        let silencedAt = ContinuousClock.now
        let second = try await harness.redeploy(stack.id, environmentId: environment.id, variables: ["N": "2"])
        let ended = try await harness.dispatcher.waitForFinish(jobId: second.id, timeout: .seconds(40))
        #expect(ended.state == .succeeded, "the agent never came back over a new connection")
        // Back within the agent's 3-s timeout, a ping interval and a reconnect (about 7 s), not after
        // the server's 60 s; the margin is for a loaded machine.
        #expect(ContinuousClock.now - silencedAt < .seconds(35))
        agent.cancel()
        await harness.stop()
    }

    @Test func anAckOfAJobSentInThisSessionWritesNothing() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        // Every statement the store's writer runs from here on.
        let statements = Mutex<[String]>([])
        try await harness.store.db.writeWithoutTransaction { db in
            db.trace(options: .statement) { event in
                if case .statement(let statement) = event { statements.withLock { $0.append(statement.sql) } }
            }
        }
        let (_, agent) = try harness.agent(keys: pair, delay: .milliseconds(200))
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })
        // Claimed as a round sends it, then acknowledged by the agent, then run and finished.
        let (_, job) = try await harness.stack("acked", on: environment.id)
        let ended = try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20))
        #expect(ended.state == .succeeded)
        let written = statements.withLock { $0 }
        #expect(written.contains { $0.contains("UPDATE job SET state = ?, finished_at = ?") }, "the trace sees the result: \(written)")
        // The job was `dispatched` on disk before it went out: its ack has nothing to write.
        #expect(!written.contains { $0.contains("UPDATE job SET state = 'dispatched' WHERE id = ? AND environment_id = ?") },
                "\(written)")
        agent.cancel()
        await harness.stop()
    }

    @Test func aFinishedJobSentAgainIsNotRunAgainAndItsResultComesBack() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let journalFile = harness.directory.appendingPathComponent("runs.log")
        let data = harness.directory.appendingPathComponent("agent-data")
        // The agent has already run this job and still owes its result (say the server crashed before storing it).
        let (_, job) = try await harness.stack("once", on: environment.id)
        let journal = try JobJournal(dataDirectory: data)
        try journal.finish(JobResult(jobId: job.id, state: .succeeded,
                                     services: [ServiceResult(name: "web", image: "x", imageId: "sha256:1", containers: 1)]))
        let (_, agent) = try harness.agent(keys: pair, journal: journalFile, dataDirectory: data)
        let ended = try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20))
        #expect(ended.state == .succeeded)
        #expect(ended.result?.services.first?.imageId == "sha256:1")
        #expect(!FileManager.default.fileExists(atPath: journalFile.path), "the engine never ran the job")
        #expect(await eventually { if case .done = journal.status(of: job.id) { true } else { false } })
        agent.cancel()
        await harness.stop()
    }

    @Test func aJobWhoseResultWasAcknowledgedAndLostIsAnsweredNotRunAgain() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let journalFile = harness.directory.appendingPathComponent("runs.log")
        let data = harness.directory.appendingPathComponent("agent-data")
        // As if the server had stored and acknowledged this result, then been restored from an older backup.
        let (_, job) = try await harness.stack("restored", on: environment.id)
        let journal = try JobJournal(dataDirectory: data)
        try journal.finish(JobResult(jobId: job.id, state: .rolledBack, error: JobError(code: "unhealthy", message: "web exited")))
        try journal.acknowledge(job.id)
        let (_, agent) = try harness.agent(keys: pair, journal: journalFile, dataDirectory: data)
        let ended = try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20))
        #expect(ended.state == .rolledBack)
        #expect(ended.error?.code == "unhealthy")
        #expect(!FileManager.default.fileExists(atPath: journalFile.path), "the engine never ran the job")
        agent.cancel()
        await harness.stop()
    }

    @Test func anEdgeAgentTakesItsJobsAtCheckInAndDisconnects() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let (runtime, agent) = try harness.agent(keys: pair, edge: true, checkin: .seconds(2))
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })
        // Idle: it leaves again without waiting for the server's timeout.
        #expect(await eventually(timeout: .seconds(12)) { await !harness.dispatcher.isConnected(environment.id) })
        let (_, job) = try await harness.stack("edge-app", on: environment.id)
        #expect(try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(30)).state == .succeeded)
        #expect(await eventually { await runtime.isIdle })
        agent.cancel()
        await harness.stop()
    }
}
