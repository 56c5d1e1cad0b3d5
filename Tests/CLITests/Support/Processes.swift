import Foundation
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A child process of a test, its stdout and stderr in files, stopped by its PID.
final class Child {
    let process = Process()
    let name: String
    let stdoutURL: URL
    let stderrURL: URL

    init(_ executable: URL, _ arguments: [String], environment: [String: String], logs directory: URL, name: String) throws {
        self.name = name
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        stdoutURL = directory.appendingPathComponent("\(name).stdout")
        stderrURL = directory.appendingPathComponent("\(name).stderr")
        for url in [stdoutURL, stderrURL] { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ signal: Int32) {
        if process.isRunning { _ = kill(pid, signal) }
    }

    /// Waits (bounded) for the process to exit; returns its status, or nil if it still runs.
    @discardableResult
    func wait(timeout: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            if Task.isCancelled {
                // A test past its time limit is cancelled; its processes must still be stopped, so
                // wait without the (now instantly returning) cancellable sleep.
                usleep(20_000)
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if await wait(timeout: .seconds(10)) == nil {
            signal(SIGKILL)
            await wait(timeout: .seconds(10))
        }
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
}

/// What one run of `wharf` did.
struct CLIRun: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }

    /// The stdout as JSON.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw TestFailure("stdout is not a JSON object: \(stdout)")
        }
        return object
    }

    /// The stderr's lines.
    var errorLines: [Substring] { stderr.split(separator: "\n") }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// POSTs to a URL with no body (as a registry or CI system calls a webhook); returns the status.
func post(_ url: String) async throws -> Int {
    guard let target = URL(string: url), target.scheme != nil else { throw TestFailure("not a URL: \(url.debugDescription)") }
    var request = URLRequest(url: target)
    request.httpMethod = "POST"
    let (_, response) = try await URLSession.shared.data(for: request)
    return (response as? HTTPURLResponse)?.statusCode ?? 0
}
