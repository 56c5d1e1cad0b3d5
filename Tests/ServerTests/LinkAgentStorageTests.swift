import Foundation
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer

/// An agent that cannot write a job to its journal answers it `failed`: the job ends, instead of
/// being sent again every few seconds forever.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct LinkAgentStorageTests {
    @Test func aJobTheAgentCannotJournalFailsWithAgentStorage() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let dataDirectory = harness.directory.appendingPathComponent("agent-data")
        let runs = harness.directory.appendingPathComponent("runs.log")
        let (_, agent) = try harness.agent(keys: pair, journal: runs, dataDirectory: dataDirectory)
        #expect(await eventually { await harness.dispatcher.isConnected(environment.id) })

        // The journal's directory becomes read-only, as a full or failing disk would leave it
        // (tests run as root, which a chmod would not stop). Unmounted whatever happens next.
        let journal = dataDirectory.appendingPathComponent("jobs").path
        try #require(try runToEnd("/usr/bin/mount", ["--bind", journal, journal]).status == 0)
        var mounted = true
        defer { if mounted { _ = try? runToEnd("/usr/bin/umount", [journal]) } }
        let remount = try runToEnd("/usr/bin/mount", ["-o", "remount,bind,ro", journal])
        try #require(remount.status == 0, "\(remount.output)")

        let (_, job) = try await harness.stack("web", on: environment.id)
        let ended = try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(30))
        #expect(ended.state == .failed)
        #expect(ended.error?.code == "agent_storage")
        #expect(ended.error?.message.contains("journal") == true)
        #expect(!FileManager.default.fileExists(atPath: runs.path), "a job the agent could not keep was run")
        #expect(try runToEnd("/usr/bin/umount", [journal]).status == 0)
        mounted = false
        agent.cancel()
        _ = try? await agent.value
        await harness.stop()
    }
}
