import Foundation
import WharfTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real `wharf-server` on a temp data dir with ports it picked itself, the agents a test starts,
/// and a `wharf` CLI whose HOME and XDG_CONFIG_HOME are temp folders. Every process is stopped by
/// PID when the test ends, whether it passed or not.
final class World {
    let root: URL
    let products = productsDirectory()
    private(set) var children: [Child] = []
    private(set) var url = ""
    private(set) var token = ""
    private var runs = 0

    var dataDirectory: URL { root.appendingPathComponent("server-data") }
    var tokenFile: URL { dataDirectory.appendingPathComponent("admin-token") }
    var configFile: URL { root.appendingPathComponent("xdg/wharf/config.json") }

    private init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-cli-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("home"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
    }

    /// Runs `body` against a fresh server (logged in with `wharf login` unless `login` is false),
    /// started with `serverArguments` added, then stops everything it started.
    static func run(login: Bool = true, serverArguments: [String] = [], _ body: (World) async throws -> Void) async throws {
        let world = try World()
        do {
            try await world.startServer(serverArguments)
            if login {
                let result = try await world.wharf(["login", "--server", world.url, "--token-file", world.tokenFile.path])
                guard result.status == 0 else { throw TestFailure("login failed: \(result)") }
            }
            try await body(world)
        } catch {
            await world.stopAll()
            throw error
        }
        await world.stopAll()
        try? FileManager.default.removeItem(at: world.root)
    }

    private func startServer(_ extra: [String]) async throws {
        let server = try Child(products.appendingPathComponent("wharf-server"), [
            "--data-dir", dataDirectory.path, "--http-host", "127.0.0.1", "--http-port", "0",
            "--zmq-bind", "tcp://127.0.0.1:*", "--log-level", "warning",
        ] + extra, environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WHARF_") },
           logs: root.appendingPathComponent("logs"), name: "server")
        children.append(server)
        let endpoints = dataDirectory.appendingPathComponent("endpoints.json")
        let started = await eventually(timeout: .seconds(30)) {
            guard server.isRunning, FileManager.default.fileExists(atPath: tokenFile.path),
                  let data = FileManager.default.contents(atPath: endpoints.path),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: String],
                  let http = object["http"] else { return false }
            url = http
            return true
        }
        guard started else { throw TestFailure("wharf-server did not start:\n\(server.stderr)\(server.stdout)") }
        token = try String(contentsOf: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The environment `wharf` runs with: temp HOME and XDG_CONFIG_HOME, no WHARF_* from outside.
    func cliEnvironment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WHARF_") }
        environment["HOME"] = root.appendingPathComponent("home").path
        environment["XDG_CONFIG_HOME"] = root.appendingPathComponent("xdg").path
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Starts `wharf` with `arguments` without waiting for it.
    func startWharf(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Child {
        runs += 1
        let child = try Child(products.appendingPathComponent("wharf"), arguments, environment: cliEnvironment(extra),
                              logs: root.appendingPathComponent("logs"), name: "wharf-\(runs)")
        children.append(child)
        return child
    }

    /// Runs the real `wharf` binary to its end (at most `timeout`).
    func wharf(_ arguments: [String], environment extra: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> CLIRun {
        try await finish(try startWharf(arguments, environment: extra), timeout: timeout, what: arguments.joined(separator: " "))
    }

    /// Runs a shell command line with the `wharf` binary as `$WHARF`.
    func shell(_ script: String, timeout: Duration = .seconds(60)) async throws -> CLIRun {
        runs += 1
        let child = try Child(URL(fileURLWithPath: "/bin/sh"), ["-c", script],
                              environment: cliEnvironment(["WHARF": products.appendingPathComponent("wharf").path]),
                              logs: root.appendingPathComponent("logs"), name: "sh-\(runs)")
        children.append(child)
        return try await finish(child, timeout: timeout, what: script)
    }

    /// Waits for a started `wharf` to end.
    func finish(_ child: Child, timeout: Duration = .seconds(60), what: String = "wharf") async throws -> CLIRun {
        guard let status = await child.wait(timeout: timeout) else {
            await child.stop()
            throw TestFailure("`\(what)` did not finish in \(timeout):\n\(child.stdout)\n\(child.stderr)")
        }
        return CLIRun(status: status, stdout: child.stdout, stderr: child.stderr)
    }

    /// Starts the agent command `wharf env add` printed, with a temp data dir (or `dataDirectory`) and
    /// `--simulate 0s` added.
    @discardableResult
    func startAgent(printedBy output: String, extra: [String] = [], dataDirectory: URL? = nil) throws -> Child {
        guard let line = output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { $0.hasPrefix("wharf-agent ") }) else {
            throw TestFailure("no wharf-agent command in:\n\(output)")
        }
        var words = line.split(separator: " ").map(String.init)
        guard let dataDir = words.firstIndex(of: "--data-dir"), dataDir + 1 < words.count else {
            throw TestFailure("the agent command has no --data-dir: \(line)")
        }
        words[dataDir + 1] = (dataDirectory ?? root.appendingPathComponent("agent-\(runs + 1)")).path
        return try runAgent(Array(words.dropFirst()) + extra)
    }

    /// Starts `wharf-agent` with `arguments` and `--simulate 0s`, without the test's `WHARF_*`
    /// variables; stopped by `stopAll`.
    @discardableResult
    func runAgent(_ arguments: [String]) throws -> Child {
        runs += 1
        let agent = try Child(products.appendingPathComponent("wharf-agent"), arguments + ["--simulate", "0s"],
                              environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WHARF_") },
                              logs: root.appendingPathComponent("logs"), name: "agent-\(runs)")
        children.append(agent)
        return agent
    }

    /// `wharf env add NAME`, its agent started, and the environment seen `connected` by `wharf env ls`.
    @discardableResult
    func connectedEnvironment(_ name: String) async throws -> Child {
        let added = try await wharf(["env", "add", name])
        guard added.status == 0 else { throw TestFailure("env add failed: \(added)") }
        let agent = try startAgent(printedBy: added.stdout)
        let connected = try await eventually(timeout: .seconds(30)) {
            let list = try await wharf(["env", "ls", "--json"])
            let environments = try list.json()["environments"] as? [[String: Any]] ?? []
            return environments.contains { $0["name"] as? String == name && $0["status"] as? String == "connected" }
        }
        guard connected else { throw TestFailure("environment \(name) never connected; agent said:\n\(agent.stderr)\(agent.stdout)") }
        return agent
    }

    /// Writes a file under the world's folder.
    func write(_ name: String, _ text: String) throws -> String {
        let url = root.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Stops every process this world started, newest first (CLI runs, agents, then the server).
    func stopAll() async {
        for child in children.reversed() { await child.stop() }
        children.removeAll()
    }
}
