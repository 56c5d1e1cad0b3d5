import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The directory holding the built executables (next to the test bundle).
func productsDirectory() -> URL {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("wharf-server").path), url.path != "/" {
        url.deleteLastPathComponent()
    }
    return url
}

/// A free TCP port on 127.0.0.1 (for restart tests, where the port must stay the same).
func freePort() -> Int {
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
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL

    init(_ executable: String, _ arguments: [String], log: URL, environment: [String: String] = [:]) throws {
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

    var pid: Int32 { process.processIdentifier }

    func kill(_ signal: Int32) {
        if process.isRunning { _ = Glibc.kill(pid, signal) }
    }

    /// Waits (bounded) for the process to exit; returns its status.
    @discardableResult
    func wait(timeout: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func stop() async {
        kill(SIGTERM)
        if await wait(timeout: .seconds(10)) == nil {
            kill(SIGKILL)
            await wait()
        }
    }

    var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
}

/// A tiny JSON HTTP client for the API.
struct APIClient: Sendable {
    var base: String
    var token: String?

    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var body: String
        var description: String { "HTTP \(status): \(body)" }
    }

    @discardableResult
    func call(_ method: String, _ path: String, json: Any? = nil, expect: Int? = nil) async throws -> (Int, [String: Any]) {
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
final class ServerProcess: @unchecked Sendable {
    let dataDirectory: URL
    let httpPort = freePort()
    let zmqPort = freePort()
    private(set) var child: ChildProcess?
    private var starts = 0

    init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory
    }

    var url: String { "http://127.0.0.1:\(httpPort)" }

    func start() async throws -> APIClient {
        starts += 1
        child = try ChildProcess("wharf-server", [
            "--data-dir", dataDirectory.path, "--http-host", "127.0.0.1", "--http-port", "\(httpPort)",
            "--zmq-bind", "tcp://127.0.0.1:\(zmqPort)", "--public-url", url,
        ], log: dataDirectory.deletingLastPathComponent().appendingPathComponent("server-\(starts).log"))
        let token = dataDirectory.appendingPathComponent("admin-token")
        let ready = await eventually(timeout: .seconds(30)) {
            guard FileManager.default.fileExists(atPath: token.path) else { return false }
            return (try? await APIClient(base: url).call("GET", "/api/health", expect: 200)) != nil
        }
        guard ready else { throw APIClient.Failure(status: 0, body: "server did not start: \(child?.output ?? "")") }
        let text = try String(contentsOf: token, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return APIClient(base: url, token: text)
    }
}
