import Foundation
import Logging
import Synchronization
import Testing

@testable import WharfAgent

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Why an engine test cannot run; thrown (never skipped) so `make test` fails loudly.
struct TestSetupError: Error, CustomStringConvertible {
    var description: String
}

/// The Docker engine and registries the engine tests run against, from `WHARF_TEST_*` variables.
struct TestEngine: Sendable {
    /// `unix:///…/docker.sock` of a private engine (never the node's main one).
    var dockerHost: String
    /// `127.0.0.1:port` of a registry without auth.
    var registry: String
    /// `127.0.0.1:port` of a registry with htpasswd auth.
    var authRegistry: String
    var authUser: String
    var authPassword: String

    /// Reads the variables; throws a message naming every missing one.
    static func fromEnvironment() throws -> TestEngine {
        let environment = ProcessInfo.processInfo.environment
        let names = [
            "WHARF_TEST_DOCKER_HOST", "WHARF_TEST_REGISTRY", "WHARF_TEST_AUTH_REGISTRY",
            "WHARF_TEST_AUTH_USER", "WHARF_TEST_AUTH_PASSWORD",
        ]
        let missing = names.filter { (environment[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw TestSetupError(
                description: """
                    engine tests need a real Docker engine and two registries; \(missing.joined(separator: ", ")) \
                    \(missing.count == 1 ? "is" : "are") not set. Set WHARF_TEST_DOCKER_HOST=unix:///path/docker.sock \
                    (a private dockerd), WHARF_TEST_REGISTRY=127.0.0.1:PORT (registry without auth), \
                    WHARF_TEST_AUTH_REGISTRY=127.0.0.1:PORT with WHARF_TEST_AUTH_USER and WHARF_TEST_AUTH_PASSWORD \
                    (htpasswd registry)
                    """
            )
        }
        return TestEngine(
            dockerHost: environment["WHARF_TEST_DOCKER_HOST"]!,
            registry: environment["WHARF_TEST_REGISTRY"]!,
            authRegistry: environment["WHARF_TEST_AUTH_REGISTRY"]!,
            authUser: environment["WHARF_TEST_AUTH_USER"]!,
            authPassword: environment["WHARF_TEST_AUTH_PASSWORD"]!
        )
    }

    /// The compose command words for a flavour, as `--compose-command` would give them.
    static func composeWords(_ flavour: ComposeFlavour) -> [String] {
        switch flavour {
        case .plugin: ["docker", "compose"]
        case .standalone: ["docker-compose"]
        }
    }

    /// A driver on the test engine with its own stacks and scratch directories under `sandbox`.
    func makeEngine(flavour: ComposeFlavour?, sandbox: Sandbox, dockerHost: String? = nil) -> ComposeCLIEngine {
        var configuration = ComposeCLIEngine.Configuration(
            stacksDirectory: sandbox.stacks,
            dockerHost: dockerHost ?? self.dockerHost,
            composeCommand: flavour.map(Self.composeWords)
        )
        configuration.scratchDirectory = sandbox.scratch
        configuration.commandTimeout = .seconds(120)
        var logger = Logger(label: "wharf.agent.tests")
        logger.logLevel = .warning
        return ComposeCLIEngine(configuration: configuration, logger: logger)
    }
}

/// A test's private directories, deleted by ``withSandbox(_:)``.
struct Sandbox: Sendable {
    let root: URL
    var stacks: URL { root.appendingPathComponent("stacks") }
    var scratch: URL { root.appendingPathComponent("scratch") }
}

/// Runs `body` with fresh sandbox directories and deletes them afterwards.
func withSandbox<T>(_ body: (Sandbox) async throws -> T) async throws -> T {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-engine-test-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    let sandbox = Sandbox(root: root)
    try FileManager.default.createDirectory(at: sandbox.scratch, withIntermediateDirectories: true)
    do {
        let result = try await body(sandbox)
        try? FileManager.default.removeItem(at: root)
        return result
    } catch {
        try? FileManager.default.removeItem(at: root)
        throw error
    }
}

/// Collects a job's log lines with the time each arrived.
final class LogRecorder: Sendable {
    private let entries = Mutex<[(ContinuousClock.Instant, String)]>([])

    var sink: @Sendable (String) -> Void {
        { [self] line in entries.withLock { $0.append((ContinuousClock.now, line)) } }
    }

    var lines: [String] { entries.withLock { $0.map(\.1) } }
    var timedLines: [(ContinuousClock.Instant, String)] { entries.withLock { $0 } }
    var text: String { lines.joined(separator: "\n") }
}

/// A unique, valid stack name for one test.
func uniqueStackName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// A TCP socket bound to `127.0.0.1:port` (0: any free port), with `SO_REUSEADDR` when asked;
/// the caller closes it.
private func boundLoopbackSocket(port: Int, reuseAddress: Bool = false) throws -> Int32 {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestSetupError(description: "socket() failed") }
    if reuseAddress {
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
        close(fd)
        throw TestSetupError(description: "could not bind 127.0.0.1:\(port): errno \(errno)")
    }
    return fd
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
func freeLoopbackPort() throws -> Int {
    let fd = try boundLoopbackSocket(port: 0)
    defer { close(fd) }
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSetupError(description: "getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// What `http://127.0.0.1:port/` answers, or nil if nothing answers.
func httpBody(port: Int) async -> String? {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/")!)
    request.timeoutInterval = 2
    request.cachePolicy = .reloadIgnoringLocalCacheData
    let session = URLSession(configuration: .ephemeral)
    defer { session.finishTasksAndInvalidate() }
    guard let (data, response) = try? await session.data(for: request),
        (response as? HTTPURLResponse)?.statusCode == 200
    else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Polls the port until it serves `expected` or `within` passes; returns the last answer.
func waitForBody(port: Int, expected: String, within: Duration = .seconds(30)) async -> String? {
    let deadline = ContinuousClock.now + within
    var last: String?
    repeat {
        last = await httpBody(port: port)
        if last == expected { return last }
        try? await Task.sleep(for: .milliseconds(200))
    } while ContinuousClock.now < deadline
    return last
}

/// A value shared between tasks behind a lock.
final class MutexBox<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) {
        storage = Mutex(value)
    }

    var value: Value { storage.withLock { $0 } }

    func update(_ body: (inout Value) -> Void) {
        storage.withLock { body(&$0) }
    }
}

/// Listens on `127.0.0.1:port` (with `SO_REUSEADDR`, so a closed server's connections do not stop
/// it) until the returned descriptor is closed: a server started meanwhile cannot bind the port.
func occupyLoopbackPort(_ port: Int) throws -> Int32 {
    let fd = try boundLoopbackSocket(port: port, reuseAddress: true)
    guard listen(fd, 1) == 0 else {
        close(fd)
        throw TestSetupError(description: "could not listen on 127.0.0.1:\(port): errno \(errno)")
    }
    return fd
}
