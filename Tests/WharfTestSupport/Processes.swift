import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The directory holding the built executables (next to the test bundle).
public func productsDirectory() -> URL {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("wharf-server").path), url.path != "/" {
        url.deleteLastPathComponent()
    }
    return url
}

/// A free TCP port on 127.0.0.1 (for restart tests, where the port must stay the same).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A child process of the test, stopped by PID.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let logURL: URL

    public init(_ executable: String, _ arguments: [String], log: URL, environment: [String: String] = [:]) throws {
        process.executableURL = productsDirectory().appendingPathComponent(executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        logURL = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    public func kill(_ signal: Int32) {
        if process.isRunning { _ = Glibc.kill(pid, signal) }
    }

    /// Waits (bounded) for the process to exit; returns its status.
    @discardableResult
    public func wait(timeout: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    public func stop() async {
        kill(SIGTERM)
        if await wait(timeout: .seconds(10)) == nil {
            kill(SIGKILL)
            await wait()
        }
    }

    public var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
}

/// A tiny JSON HTTP client for the API.
public struct APIClient: Sendable {
    public var base: String
    public var token: String?

    public init(base: String, token: String? = nil) {
        self.base = base
        self.token = token
    }

    public struct Failure: Error, CustomStringConvertible {
        public var status: Int
        public var body: String
        public var description: String { "HTTP \(status): \(body)" }
    }

    /// GETs a text resource, such as a job log.
    public func text(_ path: String) async throws -> String {
        var request = URLRequest(url: URL(string: base + path)!)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return String(decoding: try await URLSession.shared.data(for: request).0, as: UTF8.self)
    }

    @discardableResult
    public func call(_ method: String, _ path: String, json: Any? = nil, expect: Int? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        if let expect, status != expect { throw Failure(status: status, body: String(decoding: data, as: UTF8.self)) }
        return (status, object)
    }
}

/// A `wharf-server` process on a temp data dir, with fixed free ports so that it can restart on them.
///
/// A port `freePort()` found free can be taken by another test's process before the server binds
/// it: a first start that fails with "Address already in use" is tried again on new ports.
public final class ServerProcess: @unchecked Sendable {
    public let dataDirectory: URL
    public private(set) var httpPort = freePort()
    public private(set) var zmqPort = freePort()
    public private(set) var child: ChildProcess?
    /// Variables set for the server on top of the test's (`WHARF_*` settings).
    public var environment: [String: String] = [:]
    private var starts = 0

    public init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory
    }

    public var url: String { "http://127.0.0.1:\(httpPort)" }

    public func start() async throws -> APIClient {
        var attempt = 1
        while true {
            do {
                return try await startOnce()
            } catch let failure as APIClient.Failure where starts == 1 && attempt < 3 && failure.body.contains("Address already in use") {
                await child?.stop()
                starts = 0
                httpPort = freePort()
                zmqPort = freePort()
                attempt += 1
            }
        }
    }

    private func startOnce() async throws -> APIClient {
        starts += 1
        child = try ChildProcess("wharf-server", [
            "--data-dir", dataDirectory.path, "--http-host", "127.0.0.1", "--http-port", "\(httpPort)",
            "--zmq-bind", "tcp://127.0.0.1:\(zmqPort)", "--public-url", url,
        ], log: dataDirectory.deletingLastPathComponent().appendingPathComponent("server-\(starts).log"), environment: environment)
        let token = dataDirectory.appendingPathComponent("admin-token")
        let child = self.child
        let ready = await eventually(timeout: .seconds(30)) {
            // A server that exited (a port taken) will not start: no need to wait out the timeout.
            if child?.process.isRunning == false { return true }
            guard FileManager.default.fileExists(atPath: token.path) else { return false }
            return (try? await APIClient(base: url).call("GET", "/api/health", expect: 200)) != nil
        }
        guard ready, child?.process.isRunning == true else {
            throw APIClient.Failure(status: 0, body: "server did not start: \(child?.output ?? "")")
        }
        let text = try String(contentsOf: token, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return APIClient(base: url, token: text)
    }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// A fresh temporary directory.
public func temporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs a program to its end with `environment` on top of this process's; returns its exit status
/// and its output (stdout and stderr together).
public func runToEnd(_ executable: String, _ arguments: [String],
                     environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
