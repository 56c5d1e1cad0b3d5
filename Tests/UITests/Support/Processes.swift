import Foundation
#if canImport(Glibc)
import Glibc
#endif
import WharfTestSupport

/// Why the UI test environment could not be set up.
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Paths the UI tests need.
enum Paths {
    /// The package root, found from this file's place in `Tests/UITests/Support/`.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where screenshots go for people to look at: `.build/ui-screenshots/`.
    static let screenshots = packageRoot.appendingPathComponent(".build/ui-screenshots")

    /// An executable on PATH or in the usual system places, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// chromedriver as a child process of the test, stopped by its PID.
final class ChromedriverProcess: Sendable {
    private let process = Process()
    let port: Int
    let logURL: URL

    /// `temporary`: TMPDIR for chromedriver and the Chromium it starts (their scratch files).
    init(executable: String, port: Int, log: URL, temporary: URL) throws {
        self.port = port
        logURL = log
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--port=\(port)"]
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": temporary.path]) { _, new in new }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL if it is still running after five seconds.
    func stop() async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if !(await eventually(timeout: .seconds(5)) { !self.process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            _ = await eventually(timeout: .seconds(5)) { !self.process.isRunning }
        }
    }
}
