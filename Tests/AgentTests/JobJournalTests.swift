import Foundation
import Testing
import WharfAgent
import WharfProtocol

/// The agent's on-disk journal, on a real directory.
struct JobJournalTests {
    static func spec(_ id: String) -> JobSpec {
        JobSpec(id: id, kind: .deploy, stackId: "stk_1", stackName: "app", compose: "services: {}", env: ["A": "1"],
                images: ["web": "nginx:1"], pull: true,
                credentials: [RegistryAuth(registry: "127.0.0.1:5000", username: "u", password: "secret")])
    }

    @Test func aJobMovesFromHeldToFinishedToDoneAndItsCredentialsLeaveTheDisk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try JobJournal(dataDirectory: directory)
        #expect(journal.status(of: "job_1") == .unknown)
        try journal.hold(Self.spec("job_1"))
        #expect(journal.status(of: "job_1") == .held)
        #expect(journal.heldJobs().map(\.id) == ["job_1"])
        let file = journal.directory.appendingPathComponent("job_1.job")
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)

        let result = JobResult(jobId: "job_1", state: .rolledBack, error: JobError(code: "unhealthy", message: "web exited"))
        try journal.finish(result)
        #expect(journal.status(of: "job_1") == .finished(result))
        #expect(journal.pendingResults() == [result])
        #expect(journal.heldJobs().isEmpty)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: journal.directory.path)
            .compactMap { try? String(contentsOf: journal.directory.appendingPathComponent($0), encoding: .utf8) }
        #expect(!leftovers.contains { $0.contains("secret") }, "the password is gone with the spec")

        try journal.acknowledge("job_1")
        #expect(journal.status(of: "job_1") == .done(result), "the acknowledged result is kept to answer a redelivery")
        #expect(journal.pendingResults().isEmpty)
    }

    @Test func aSpecLeftBesideAResultOrATombstoneIsNotRunAgain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try JobJournal(dataDirectory: directory)
        let finished = JobResult(jobId: "job_1", state: .succeeded, error: nil)
        try journal.hold(Self.spec("job_1"))
        try journal.finish(finished)
        try journal.hold(Self.spec("job_2"))
        try journal.finish(JobResult(jobId: "job_2", state: .failed, error: JobError(code: "pull_failed", message: "no tag")))
        try journal.acknowledge("job_2")
        // The agent stopped after writing each result and before deleting its spec.
        try journal.hold(Self.spec("job_1"))
        try journal.hold(Self.spec("job_2"))
        try journal.hold(Self.spec("job_3"))

        #expect(journal.heldJobs().map(\.id) == ["job_3"])
        #expect(journal.status(of: "job_1") == .finished(finished))
        let names = try FileManager.default.contentsOfDirectory(atPath: journal.directory.path)
        #expect(!names.contains("job_1.job") && !names.contains("job_2.job"), "the stale specs (and their credentials) are gone: \(names)")
    }

    @Test func aJobIdCannotNameAPathOutsideTheJournal() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try JobJournal(dataDirectory: directory)
        try journal.hold(Self.spec("../../escape"))
        #expect(!FileManager.default.fileExists(atPath: directory.deletingLastPathComponent().appendingPathComponent("escape.job").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal.directory.path).contains("escape.job"))
    }
}
