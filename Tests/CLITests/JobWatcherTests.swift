import Foundation
import Testing
@testable import WharfCLI

/// A job whose state and log move one step on every poll.
actor ScriptedFeed: JobFeed {
    struct Step { var state: String; var log: String; var error: (code: String, message: String)? = nil }
    let steps: [Step]
    private var index = -1

    init(_ steps: [Step]) { self.steps = steps }

    func job(id: String) async throws -> (JobInfo, Data) {
        index = min(index + 1, steps.count - 1)
        let step = steps[index]
        var object: [String: Any] = ["id": id, "stackId": "stk_1", "kind": "deploy", "state": step.state,
                                     "createdAt": "2025-01-01T00:00:00Z"]
        if step.state != "queued" { object["finishedAt"] = "2025-01-01T00:00:02Z" }
        if let error = step.error { object["error"] = ["code": error.code, "message": error.message] }
        let data = try JSONSerialization.data(withJSONObject: ["job": object])
        return (try JSONDecoder().decode(JobBody.self, from: data).job, data)
    }

    func log(id: String) async throws -> String { steps[max(index, 0)].log }
}

/// A server that cannot be reached for the first `failures` polls (a restart, a proxy's 502).
actor FlakyFeed: JobFeed {
    let inner: ScriptedFeed
    var failures: Int
    let error: CLIError

    init(_ inner: ScriptedFeed, failures: Int, error: CLIError) {
        self.inner = inner
        self.failures = failures
        self.error = error
    }

    func job(id: String) async throws -> (JobInfo, Data) {
        if failures > 0 {
            failures -= 1
            throw error
        }
        return try await inner.job(id: id)
    }

    func log(id: String) async throws -> String { try await inner.log(id: id) }
}

/// Collects what a watcher reports, in order.
final class Transcript {
    var entries: [String] = []
}

struct JobWatcherTests {
    @Test(.timeLimit(.minutes(1)))
    func reportsStateChangesAndOnlyNewLogText() async throws {
        let feed = ScriptedFeed([
            .init(state: "queued", log: ""),
            .init(state: "queued", log: ""),
            .init(state: "running", log: "pulling\n"),
            .init(state: "running", log: "pulling\nstarting web\n"),
            .init(state: "succeeded", log: "pulling\nstarting web\nhealthy\n"),
        ])
        let transcript = Transcript()
        let watcher = JobWatcher(feed: feed, interval: .milliseconds(1), timeout: .seconds(30),
                                 onState: { transcript.entries.append("state " + $0.state) },
                                 onLog: { transcript.entries.append("log " + $0) })
        let (job, _) = try await watcher.watch("job_1")
        #expect(job.state == "succeeded")
        #expect(transcript.entries == [
            "state queued", "state running", "log pulling\n", "log starting web\n", "log healthy\n", "state succeeded",
        ])
        try JobWatcher.requireSuccess(job)
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("rolled_back", "health_timeout", "web did not become healthy in 60s", "was rolled back"),
        ("failed", "pull_failed", "manifest unknown", "failed"),
    ])
    func aFailedOrRolledBackJobIsAnErrorWithItsCodeAndMessage(state: String, code: String, message: String, wording: String) async throws {
        let feed = ScriptedFeed([.init(state: "running", log: ""), .init(state: state, log: "x\n", error: (code, message))])
        let (job, _) = try await JobWatcher(feed: feed, interval: .milliseconds(1)).watch("job_9")
        let error = #expect(throws: CLIError.self) { try JobWatcher.requireSuccess(job) }
        #expect(error?.code == code)
        #expect(error?.message == "deploy job job_9 \(wording): \(message)")
        #expect(error?.exitCode == 1)
    }

    /// `--wait --json` prints the finished job even when it failed, then fails the command.
    @Test(.timeLimit(.minutes(1)), arguments: ["failed", "rolled_back", "succeeded"])
    func waitingWithJSONPrintsTheFinalJobWhateverItsEnd(state: String) async throws {
        let feed = ScriptedFeed([.init(state: state, log: "x\n", error: state == "succeeded" ? nil : ("pull_failed", "manifest unknown"))])
        let printed = Transcript()
        let options = try WaitOptions.parse(["--wait"])
        let wait = { try await waitForJob("job_3", feed: feed, options: options, json: true,
                                          printJSON: { printed.entries.append(String(decoding: $0, as: UTF8.self)) }) }
        if state == "succeeded" {
            try await wait()
        } else {
            let error = await #expect(throws: CLIError.self) { try await wait() }
            #expect(error?.code == "pull_failed")
        }
        #expect(printed.entries.count == 1, "\(printed.entries)")
        let object = try JSONSerialization.jsonObject(with: Data(try #require(printed.entries.first).utf8)) as? [String: Any]
        let job = try #require(object?["job"] as? [String: Any])
        #expect(job["id"] as? String == "job_3" && job["state"] as? String == state)
    }

    @Test(.timeLimit(.minutes(1)))
    func waitingGivesUpAtTheTimeout() async throws {
        let feed = ScriptedFeed([.init(state: "queued", log: "")])
        let watcher = JobWatcher(feed: feed, interval: .milliseconds(10), timeout: .milliseconds(100))
        let error = await #expect(throws: CLIError.self) { try await watcher.watch("job_2") }
        #expect(error?.code == "timeout")
        #expect(error?.message.contains("still queued") == true)
    }

    @Test(.timeLimit(.minutes(1)))
    func aServerAwayForAWhileIsAskedAgainAndTheWatchGoesOn() async throws {
        let steps = ScriptedFeed([.init(state: "running", log: "a\n"), .init(state: "succeeded", log: "a\nb\n")])
        let feed = FlakyFeed(steps, failures: 3, error: CLIError(code: "http_502", message: "GET /api/jobs/job_1 answered HTTP 502"))
        let transcript = Transcript()
        let watcher = JobWatcher(feed: feed, interval: .milliseconds(1), timeout: .seconds(30),
                                 onState: { transcript.entries.append("state " + $0.state) },
                                 onLog: { transcript.entries.append("log " + $0) },
                                 onLostContact: { transcript.entries.append("lost " + $0.code) })
        let (job, _) = try await watcher.watch("job_1")
        #expect(job.state == "succeeded")
        #expect(transcript.entries == ["lost http_502", "state running", "log a\n", "log b\n", "state succeeded"])
    }

    @Test(.timeLimit(.minutes(1)))
    func aWatchThatEndsWithTheJobNotFinalExits75AndAFailureThatWillNotPassAtOnce() async throws {
        let away = FlakyFeed(ScriptedFeed([.init(state: "running", log: "")]), failures: .max,
                             error: CLIError(code: "unreachable", message: "could not reach the Wharf server at http://127.0.0.1:9"))
        let lost = await #expect(throws: CLIError.self) {
            try await JobWatcher(feed: away, interval: .milliseconds(1), timeout: .milliseconds(50)).watch("job_2")
        }
        #expect(lost?.exitCode == JobWatcher.notFinalExitStatus)
        #expect(lost?.message.contains("goes on on the server") == true)
        let noTimeout = FlakyFeed(ScriptedFeed([.init(state: "running", log: "")]), failures: .max,
                                  error: CLIError(code: "unreachable", message: "could not reach the Wharf server"))
        let gaveUp = await #expect(throws: CLIError.self) {
            try await JobWatcher(feed: noTimeout, interval: .milliseconds(1), timeout: nil, retryFor: .milliseconds(50)).watch("job_3")
        }
        #expect(gaveUp?.exitCode == JobWatcher.notFinalExitStatus)

        let slow = ScriptedFeed([.init(state: "running", log: "")])
        let timedOut = await #expect(throws: CLIError.self) {
            try await JobWatcher(feed: slow, interval: .milliseconds(1), timeout: .milliseconds(20)).watch("job_4")
        }
        #expect(timedOut?.code == "timeout" && timedOut?.exitCode == 75)

        let refused = FlakyFeed(ScriptedFeed([.init(state: "running", log: "")]), failures: 1,
                                error: CLIError(code: "not_found", message: "job not found"))
        let notFound = await #expect(throws: CLIError.self) {
            try await JobWatcher(feed: refused, interval: .milliseconds(1), timeout: .seconds(30)).watch("job_5")
        }
        #expect(notFound?.code == "not_found" && notFound?.exitCode == 1)
    }
}
