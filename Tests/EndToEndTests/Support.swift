import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The private engine and registries `make test` starts (scripts/testenv.sh).
struct TestEnvironment {
    let dockerHost: String
    let registry: String
    let scripts: String

    /// Reads the environment; a missing variable fails the test with a clear message (never a skip).
    static func require() throws -> TestEnvironment {
        let env = ProcessInfo.processInfo.environment
        let missing = ["WHARF_TEST_DOCKER_HOST", "WHARF_TEST_REGISTRY", "WHARF_TEST_SCRIPTS"].filter { env[$0] == nil }
        try #require(missing.isEmpty, "run through `make test`: missing \(missing.joined(separator: ", "))")
        return TestEnvironment(dockerHost: env["WHARF_TEST_DOCKER_HOST"]!, registry: env["WHARF_TEST_REGISTRY"]!,
                               scripts: env["WHARF_TEST_SCRIPTS"]!)
    }

    /// Runs a command with DOCKER_HOST set to the private engine; returns its status and output.
    private func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        try runToEnd(executable, arguments, environment: ["DOCKER_HOST": dockerHost])
    }

    /// Builds a busybox image serving `content` and pushes it (scripts/make-test-image.sh).
    func makeImage(_ reference: String, content: String, mode: String = "serve") throws {
        let (status, output) = try run("/bin/bash", ["\(scripts)/make-test-image.sh", reference, content, mode])
        try #require(status == 0, "make-test-image failed: \(output)")
    }

    /// Runs the docker CLI against the private engine and returns its output.
    @discardableResult
    func docker(_ arguments: [String]) throws -> String {
        try run("/usr/bin/env", ["docker"] + arguments).1
    }
}

/// What `http://127.0.0.1:port/` serves now, or nil.
func served(port: Int) async -> String? {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/")!)
    request.timeoutInterval = 2
    guard let (data, response) = try? await URLSession.shared.data(for: request),
          (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// POSTs to a URL (a webhook), returning the status and JSON body.
func post(_ url: String, contentType: String? = nil, body: Data? = nil, timeout: TimeInterval = 200) async throws -> (Int, [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = "POST"
    request.timeoutInterval = timeout
    if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
    request.httpBody = body
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
}

extension APIClient {
    /// Polls a job until it ends; returns it.
    func finishedJob(_ id: String, timeout: Duration = .seconds(180)) async throws -> [String: Any] {
        var job: [String: Any] = [:]
        _ = try await eventually(timeout: timeout) {
            let (_, body) = try await call("GET", "/api/jobs/\(id)", expect: 200)
            job = body["job"] as? [String: Any] ?? [:]
            return ["succeeded", "failed", "rolled_back"].contains(job["state"] as? String ?? "")
        }
        return job
    }
}

/// Runs the real `wharf` CLI against a server; returns its exit status, stdout and stderr.
func wharf(_ arguments: [String], server: String, token: String, directory: URL) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = productsDirectory().appendingPathComponent("wharf")
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var environment = ProcessInfo.processInfo.environment
    environment["WHARF_SERVER"] = server
    environment["WHARF_TOKEN"] = token
    environment["XDG_CONFIG_HOME"] = directory.appendingPathComponent("config").path
    process.environment = environment
    // Files, not pipes: a chatty `--wait` can never block on a full pipe.
    let outURL = directory.appendingPathComponent("wharf-\(UUID().uuidString).out")
    let errURL = directory.appendingPathComponent("wharf-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    process.waitUntilExit()
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    return (process.terminationStatus, try String(contentsOf: outURL, encoding: .utf8), try String(contentsOf: errURL, encoding: .utf8))
}
