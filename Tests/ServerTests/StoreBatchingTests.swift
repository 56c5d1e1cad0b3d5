import Foundation
import Testing
import WharfProtocol
@testable import WharfServer

/// Group commit of job requests and batched agent messages, on a real SQLite file.
@Suite(.timeLimit(.minutes(2)))
struct StoreBatchingTests {
    static func store() throws -> SQLiteStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try SQLiteStore(path: directory.appendingPathComponent("wharf.sqlite").path)
    }

    /// Removes the directory that `store()` made for `store` (call it in a `defer` next to `store()`).
    static func discard(_ store: SQLiteStore) {
        let directory = URL(fileURLWithPath: store.db.path).deletingLastPathComponent()
        guard directory.lastPathComponent.hasPrefix("wharf-store-") else { return }
        try? FileManager.default.removeItem(at: directory)
    }

    static func stack(_ store: SQLiteStore, _ name: String, on environmentId: String) async throws -> (Stack, Job) {
        try await store.createStack(
            name: name, environmentId: environmentId, compose: "services:\n  web:\n    image: demo/web:v1\n", env: [:],
            plan: [PlannedService(name: "web", image: "demo/web:v1")], trigger: JobTrigger(source: "api"),
            publicURL: "http://127.0.0.1")
    }

    static func request(_ image: String, coalesce: Bool = true) -> JobRequest {
        JobRequest(kind: .deploy, plan: [PlannedService(name: "web", image: image)],
                   trigger: JobTrigger(source: "webhook"), coalesce: coalesce)
    }

    @Test func concurrentRequestsAreAllStoredAndOneBadRequestDoesNotUndoTheOthers() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        var stacks: [Stack] = []
        for index in 0..<20 { stacks.append(try await Self.stack(store, "s\(index)", on: environment.id).0) }
        let stackIds = stacks.map(\.id)

        // 400 calls at once, 20 per stack, none coalescing, plus calls for a stack that does not exist.
        let outcomes = await withTaskGroup(of: (String, Result<Job, any Error>).self) { group in
            for call in 0..<400 {
                let stackId = call % 25 < 20 ? stackIds[call % 25] : "stk_missing"
                group.addTask {
                    do { return (stackId, .success(try await store.enqueueJob(stackId: stackId, request: Self.request("demo/web:v\(call)", coalesce: false)))) }
                    catch { return (stackId, .failure(error)) }
                }
            }
            var all: [(String, Result<Job, any Error>)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let accepted = outcomes.compactMap { try? $0.1.get() }
        let refused = outcomes.filter { (try? $0.1.get()) == nil }
        #expect(refused.allSatisfy { $0.0 == "stk_missing" })
        #expect(refused.allSatisfy { ($0.1.failure as? StoreError)?.code == "not_found" })
        #expect(accepted.count == outcomes.count - refused.count)
        #expect(Set(accepted.map(\.id)).count == accepted.count, "every call made its own job")
        // Each returned job is the one on disk.
        for job in accepted.prefix(50) {
            let stored = try await store.job(id: job.id).job
            #expect(stored == job)
        }
        let queued = try await store.jobs(stackId: nil, state: .queued, limit: 10_000)
        #expect(queued.count == accepted.count + stacks.count, "the calls' jobs plus each stack's first deploy")
    }

    @Test func callsThatArriveTogetherForOneStackCoalesceIntoItsQueuedJob() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, first) = try await Self.stack(store, "hot", on: environment.id)
        let jobs = try await withThrowingTaskGroup(of: Job.self) { group in
            for call in 0..<100 { group.addTask { try await store.enqueueJob(stackId: stack.id, request: Self.request("demo/web:v\(call)")) } }
            return try await group.reduce(into: [Job]()) { $0.append($1) }
        }
        #expect(Set(jobs.map(\.id)) == [first.id])
        let stored = try await store.job(id: first.id).job
        #expect(stored.coalesced == 100)
        #expect(jobs.map(\.coalesced).sorted() == Array(1...100), "each call saw the job as its own change left it")
    }

    @Test func joiningAndNewJobsMixedInOneCommitLeaveEveryJobAsItsLastCallerSawIt() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (stack, _) = try await Self.stack(store, "mixed", on: environment.id)
        let calls = 300
        let jobs = try await withThrowingTaskGroup(of: (Bool, Job).self) { group in
            for call in 0..<calls {
                let coalesce = call % 7 != 0
                group.addTask {
                    (coalesce, try await store.enqueueJob(stackId: stack.id, request: Self.request("demo/web:v\(call)", coalesce: coalesce)))
                }
            }
            return try await group.reduce(into: [(Bool, Job)]()) { $0.append($1) }
        }
        let joining = jobs.filter(\.0).count
        let created = Set(jobs.filter { !$0.0 }.map(\.1.id))
        #expect(created.count == calls - joining, "each call that may not join makes its own job")
        let stored = try await store.jobs(stackId: stack.id, state: .queued, limit: 1_000)
        #expect(stored.map(\.coalesced).reduce(0, +) == joining, "every other call joined exactly one job")
        // The last caller to touch a job saw it exactly as it is stored.
        for job in stored where job.coalesced > 0 {
            let last = try #require(jobs.map(\.1).filter { $0.id == job.id }.max { $0.coalesced < $1.coalesced })
            #expect(last == job)
        }
    }

    @Test func aClaimedJobCarriesOnlyItsOwnRegistriesCredentials() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        _ = try await store.addRegistry(url: "registry.example.com:5000", username: "ci", password: "s3cret")
        _ = try await store.addRegistry(url: "other.example.com", username: "x", password: "y")
        let (_, job) = try await store.createStack(
            name: "app", environmentId: environment.id,
            compose: "services:\n  web:\n    image: registry.example.com:5000/team/web:1\n  cache:\n    image: redis:7\n", env: [:],
            plan: [PlannedService(name: "web", image: "registry.example.com:5000/team/web:1"), PlannedService(name: "cache", image: "redis:7")],
            trigger: JobTrigger(source: "api"), publicURL: "http://127.0.0.1")
        let claims = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 8)])
        let spec = try #require(claims.first?.jobs.first)
        #expect(spec.id == job.id)
        #expect(spec.credentials == [RegistryAuth(registry: "registry.example.com:5000", username: "ci", password: "s3cret")])
        #expect(spec.images == ["web": "registry.example.com:5000/team/web:1", "cache": "redis:7"])
    }

    @Test func anAgentBatchAppliesAcksStartsLogsAndResultsInOrder() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (_, job) = try await Self.stack(store, "app", on: environment.id)
        let claims = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 8)])
        #expect(claims.first?.jobs.map(\.id) == [job.id])
        #expect(claims.first?.openCount == 1)
        #expect(try await store.job(id: job.id).job.state == .dispatched, "claimed before it is sent")
        let again = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [job.id], capacity: 8)])
        #expect(again.first?.jobs.isEmpty == true, "what the agent holds is skipped")

        var batch = AgentBatch()
        batch.acks = [.init(jobId: job.id, environmentId: environment.id)]
        batch.started = [.init(jobId: job.id, environmentId: environment.id)]
        batch.logs = [.init(chunk: LogChunk(jobId: job.id, seq: 0, lines: ["pulling", "up"]), environmentId: environment.id)]
        let result = JobResult(jobId: job.id, state: .succeeded, services: [
            ServiceResult(name: "web", image: "demo/web:v1", imageId: "sha256:1", containers: 1)])
        batch.results = [
            .init(result: result, environmentId: environment.id),
            .init(result: JobResult(jobId: "job_nobody", state: .succeeded, services: []), environmentId: environment.id),
            .init(result: result, environmentId: "env_other"),
            .init(result: result, environmentId: environment.id),
        ]
        batch.countOpen = [environment.id]
        let outcome = try await store.applyAgentBatch(batch, at: Date())
        guard outcome.results.count == 4, case .stored(let finished, true) = outcome.results[0] else {
            Issue.record("the first result was not stored: \(outcome.results)")
            return
        }
        #expect(finished.state == .succeeded)
        guard case .unknown = outcome.results[1], case .unknown = outcome.results[2],
              case .stored(_, false) = outcome.results[3] else {
            Issue.record("unexpected outcomes: \(outcome.results)")
            return
        }
        #expect(outcome.openCounts == [environment.id: 0])
        #expect(try await store.jobLog(jobId: job.id) == "pulling\nup\n")
        let stored = try await store.job(id: job.id).job
        #expect(stored.state == .succeeded)
        #expect(stored.startedAt != nil)
        #expect(finished == stored, "the job a result returns is the one on disk")
    }

    /// An agent is believed only for its own environment: another environment's agent that names
    /// this job in an ack, a start, a log chunk or a result changes nothing of it.
    @Test func acksStartsLogsAndResultsFromAnotherEnvironmentsAgentChangeNothing() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        let (environment, _) = try await store.createEnvironment(name: "node", type: .agent)
        let (other, _) = try await store.createEnvironment(name: "intruder", type: .agent)
        let (_, job) = try await Self.stack(store, "app", on: environment.id)
        // An ack moves a queued job to dispatched, but not one from another environment's agent.
        var ack = AgentBatch()
        ack.acks = [.init(jobId: job.id, environmentId: other.id)]
        _ = try await store.applyAgentBatch(ack, at: Date())
        #expect(try await store.job(id: job.id).job.state == .queued, "acknowledged by another environment's agent")
        _ = try await store.claimDispatch([DispatchRequest(environmentId: environment.id, skip: [], capacity: 8)])
        #expect(try await store.job(id: job.id).job.state == .dispatched)

        var batch = AgentBatch()
        batch.acks = [.init(jobId: job.id, environmentId: other.id)]
        batch.started = [.init(jobId: job.id, environmentId: other.id)]
        batch.logs = [.init(chunk: LogChunk(jobId: job.id, seq: 0, lines: ["forged"]), environmentId: other.id)]
        batch.results = [.init(result: JobResult(jobId: job.id, state: .failed, services: []), environmentId: other.id)]
        let outcome = try await store.applyAgentBatch(batch, at: Date())
        guard outcome.results.count == 1, case .unknown = outcome.results[0] else {
            Issue.record("a result from another environment was taken: \(outcome.results)")
            return
        }
        let after = try await store.job(id: job.id).job
        #expect(after.state == .dispatched, "started by another environment's agent")
        #expect(after.startedAt == nil)
        #expect(try await store.jobLog(jobId: job.id).isEmpty, "a log line from another environment's agent was stored")

        // The same messages from its own agent do count (the test above checks each in detail).
        batch.acks[0].environmentId = environment.id
        batch.started[0].environmentId = environment.id
        batch.logs[0].environmentId = environment.id
        batch.results = []
        _ = try await store.applyAgentBatch(batch, at: Date())
        #expect(try await store.job(id: job.id).job.state == .running)
        #expect(try await store.jobLog(jobId: job.id) == "forged\n")
    }

    @Test func lastSeenTimesOfManyAgentsAreWrittenInOneStatement() async throws {
        let store = try Self.store()
        defer { StoreBatchingTests.discard(store) }
        var ids: [String] = []
        for index in 0..<300 { ids.append(try await store.createEnvironment(name: "node-\(index)", type: .agent).0.id) }
        let heard = Array(ids.prefix(200)) + ["env_unknown", "quote\"and/slash"]
        let when = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.touchEnvironments(ids: heard, at: when)
        let environments = try await store.environments()
        #expect(environments.count == 300)
        for environment in environments {
            #expect(environment.lastSeenAt == (ids.prefix(200).contains(environment.id) ? when : nil), "\(environment.id)")
        }
        try await store.touchEnvironments(ids: [], at: Date())
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
