import Foundation
#if canImport(Glibc)
import Glibc
#endif
import WharfProtocol

/// The agent's on-disk record of the jobs it holds and the results it owes the server.
///
/// Layout under `DIR/jobs`: `<id>.job` (the spec, 0600, while the job is unfinished), `<id>.result`
/// (until the server acknowledges it) and `<id>.done` (the acknowledged result, so a redelivered job
/// is answered and never run twice). Every write is atomic (temp file + rename) and synced before it is acknowledged.
public struct JobJournal: Sendable {
    public let directory: URL

    /// Opens (and creates) the journal under `dataDirectory/jobs`.
    public init(dataDirectory: URL) throws {
        directory = dataDirectory.appendingPathComponent("jobs", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    private func url(_ id: String, _ suffix: String) -> URL {
        // Job ids come from the server; keep them from naming paths outside the journal.
        let safe = id.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return directory.appendingPathComponent("\(safe).\(suffix)")
    }

    private func write(_ data: Data, to url: URL) throws {
        do {
            try PrivateFile.write(Array(data), to: url.path)
        } catch {
            throw AgentSetupError(message: error.description)
        }
    }

    /// What the journal knows of a job.
    public enum Status: Sendable, Equatable {
        case unknown
        case held
        case finished(JobResult)
        /// The server acknowledged the result; it is kept (when known) in case the server asks again.
        case done(JobResult?)
    }

    /// The status of one job.
    public func status(of id: String) -> Status {
        let manager = FileManager.default
        if let data = manager.contents(atPath: url(id, "result").path),
           let result = try? JSONDecoder().decode(JobResult.self, from: data) {
            return .finished(result)
        }
        if manager.fileExists(atPath: url(id, "done").path) {
            return .done(manager.contents(atPath: url(id, "done").path).flatMap { try? JSONDecoder().decode(JobResult.self, from: $0) })
        }
        if manager.fileExists(atPath: url(id, "job").path) { return .held }
        return .unknown
    }

    /// Keeps a received job; after this returns the job may be acknowledged.
    public func hold(_ spec: JobSpec) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try write(try encoder.encode(spec), to: url(spec.id, "job"))
    }

    /// Records a result and drops the spec (and the credentials in it). Both are on disk when this
    /// returns, the directory synced: after a power cut the job is finished, never run again.
    public func finish(_ result: JobResult) throws {
        try write(try JSONEncoder().encode(result), to: url(result.jobId, "result"))
        try? FileManager.default.removeItem(at: url(result.jobId, "job"))
        do {
            try PrivateFile.syncDirectory(directory.path)
        } catch {
            throw AgentSetupError(message: error.description)
        }
    }

    /// The server has the result: it becomes the tombstone, so a job sent again is answered, never run.
    public func acknowledge(_ id: String) throws {
        let result = url(id, "result")
        if FileManager.default.fileExists(atPath: result.path) {
            guard rename(result.path, url(id, "done").path) == 0 else {
                throw AgentSetupError(message: "cannot write \(url(id, "done").path): \(String(cString: strerror(errno)))")
            }
        } else {
            try write(Data(), to: url(id, "done"))
        }
        try? FileManager.default.removeItem(at: url(id, "job"))
    }

    /// Unfinished jobs, oldest file first: those cut short by a crash run again from the start.
    ///
    /// A spec left beside a result or a tombstone (the agent stopped between writing the result and
    /// deleting the spec) is of a finished job: it is deleted, not run again.
    public func heldJobs() -> [JobSpec] {
        files(suffix: "job").compactMap { url in
            guard let spec = FileManager.default.contents(atPath: url.path).flatMap({ try? JSONDecoder().decode(JobSpec.self, from: $0) }) else {
                return nil
            }
            guard status(of: spec.id) == .held else {
                try? FileManager.default.removeItem(at: url)
                return nil
            }
            return spec
        }
    }

    /// Results the server has not acknowledged.
    public func pendingResults() -> [JobResult] {
        files(suffix: "result").compactMap { url in
            FileManager.default.contents(atPath: url.path).flatMap { try? JSONDecoder().decode(JobResult.self, from: $0) }
        }
    }

    private func files(suffix: String) -> [URL] {
        // Path-based FileManager calls: URL resource values would pull a large part of Foundation into the agent.
        let manager = FileManager.default
        let names = ((try? manager.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix("." + suffix) }
        let dated = names.map { name -> (url: URL, created: Date) in
            let url = directory.appendingPathComponent(name)
            let attributes = try? manager.attributesOfItem(atPath: url.path)
            let created = (attributes?[.creationDate] ?? attributes?[.modificationDate]) as? Date
            return (url, created ?? .distantPast)
        }
        return dated.sorted { $0.created == $1.created ? $0.url.path < $1.url.path : $0.created < $1.created }.map(\.url)
    }

    /// Drops one held job's spec (the server ended the job without this agent); nothing of it is run.
    public func discard(_ id: String) {
        try? FileManager.default.removeItem(at: url(id, "job"))
    }

    /// Empties the journal: held jobs, results and tombstones; returns how many jobs were held.
    ///
    /// For a new enrolment: what the journal holds was given to (or owed to) an earlier key, which
    /// the server no longer believes. Run again, such a job would deploy a stack of another
    /// environment, or an old spec over what the environment's new agent deployed since.
    @discardableResult
    public func discardAll() -> Int {
        let held = files(suffix: "job").count
        for suffix in ["job", "result", "done"] {
            for url in files(suffix: suffix) { try? FileManager.default.removeItem(at: url) }
        }
        return held
    }

    /// Drops the unfinished jobs (results and tombstones stay); returns how many there were.
    ///
    /// For an agent replaced by another connection with its key (`agent_superseded`): the server
    /// gives those jobs to that connection, so this directory must not run them at its next start.
    @discardableResult
    public func discardHeld() -> Int {
        let held = heldJobs()
        for spec in held { try? FileManager.default.removeItem(at: url(spec.id, "job")) }
        return held.count
    }

    /// Removes tombstones older than `age`, so the journal does not grow forever.
    public func pruneTombstones(olderThan age: TimeInterval) {
        let limit = Date().addingTimeInterval(-age)
        for url in files(suffix: "done") {
            if let date = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date, date < limit {
                try? FileManager.default.removeItem(at: url)
            }
        }
    }
}
