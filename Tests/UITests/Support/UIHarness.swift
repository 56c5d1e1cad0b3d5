import Foundation
import Synchronization
import Testing
import WharfTestSupport

/// A real `wharf-server`, a simulated `wharf-agent` on a connected environment, chromedriver and a
/// headless Chromium session: everything the UI tests drive, started once per suite.
final class UIHarness: Sendable {
    @TaskLocal static var current: UIHarness?
    /// Why the harness could not start, for every test of the suite to fail with.
    @TaskLocal static var startFailure: String?

    /// The suite's harness, or the reason it is missing as a thrown error (so the test fails, never skips).
    static func required() throws -> UIHarness {
        if let current { return current }
        throw HarnessError(startFailure ?? "The UI test harness is not running: put the test in a suite with the .uiHarness trait.")
    }

    let workDirectory: URL
    let server: ServerProcess
    let chromedriver: ChromedriverProcess
    let browser: BrowserSession
    /// The server's base URL, `http://127.0.0.1:<port>`.
    let baseURL: String
    let adminToken: String
    let api: APIClient
    /// A connected agent environment for tests that need stacks to deploy.
    let dockEnvironmentId: String
    private let agents: Mutex<[ChildProcess]>

    private init(workDirectory: URL, server: ServerProcess, api: APIClient, chromedriver: ChromedriverProcess,
                 browser: BrowserSession, dockEnvironmentId: String, agents: [ChildProcess]) {
        self.workDirectory = workDirectory
        self.server = server
        self.chromedriver = chromedriver
        self.browser = browser
        self.baseURL = server.url
        self.adminToken = api.token ?? ""
        self.api = api
        self.dockEnvironmentId = dockEnvironmentId
        self.agents = Mutex(agents)
    }

    /// Starts everything; throws (so that every test of the suite fails) when a part is missing.
    static func start() async throws -> UIHarness {
        guard let chromedriverPath = Paths.which("chromedriver") else {
            throw HarnessError("chromedriver is not installed: the UI tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver).")
        }
        guard Paths.which("chromium") != nil else {
            throw HarnessError("chromium is not installed: the UI tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver).")
        }
        guard FileManager.default.fileExists(atPath: productsDirectory().appendingPathComponent("wharf-agent").path) else {
            throw HarnessError("wharf-server and wharf-agent were not found next to the test bundle \(CommandLine.arguments[0]); build them first (swift build).")
        }
        let work = try temporaryDirectory("wharf-ui")
        try FileManager.default.createDirectory(at: Paths.screenshots, withIntermediateDirectories: true)
        // Failure shots of an earlier run would only mislead.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: Paths.screenshots.path)) ?? [] where name.hasPrefix("failure-") {
            try? FileManager.default.removeItem(at: Paths.screenshots.appendingPathComponent(name))
        }

        // The server, on free ports, with its admin token.
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server-data"))
        let api: APIClient
        do {
            api = try await server.start()
        } catch {
            await server.child?.stop()
            throw error
        }

        // chromedriver, then a browser session that may use the clipboard on the server's origin.
        let chromedriver: ChromedriverProcess
        do {
            chromedriver = try ChromedriverProcess(executable: chromedriverPath, port: freePort(),
                                                   log: work.appendingPathComponent("chromedriver.log"),
                                                   temporary: work.appendingPathComponent("tmp"))
        } catch {
            await server.child?.stop()
            throw error
        }
        let driver = WebDriver(port: chromedriver.port)
        let browser: BrowserSession
        do {
            guard await eventually(timeout: .seconds(30), { await driver.isReady() }) else {
                throw HarnessError("chromedriver did not become ready:\n\(chromedriver.output)")
            }
            browser = try await driver.newSession()
            try await browser.command("POST", "timeouts", ["script": 30_000, "pageLoad": 60_000, "implicit": 0])
            try await browser.cdp("Browser.grantPermissions", [
                "origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            ])
        } catch {
            await chromedriver.stop()
            await server.child?.stop()
            throw HarnessError("Chromium did not start through chromedriver: \(error)\n\(chromedriver.output)")
        }

        // One connected agent environment with a simulated agent, enrolled with its join token.
        var agents: [ChildProcess] = []
        do {
            let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "dock-1", "type": "agent"], expect: 201)
            guard let environmentId = (created["environment"] as? [String: Any])?["id"] as? String,
                  let join = created["joinToken"] as? String else {
                throw HarnessError("POST /api/environments answered without an id or join token: \(created)")
            }
            agents.append(try startAgent(work: work, name: "dock-1", server: server.url, join: join))
            let connected = await eventually(timeout: .seconds(30)) {
                let environment = try? await api.call("GET", "/api/environments/\(environmentId)", expect: 200).1
                return (environment?["environment"] as? [String: Any])?["status"] as? String == "connected"
            }
            guard connected else {
                throw HarnessError("the simulated agent did not connect:\n\(agents[0].output)\n\(server.child?.output ?? "")")
            }
            return UIHarness(workDirectory: work, server: server, api: api, chromedriver: chromedriver, browser: browser,
                             dockEnvironmentId: environmentId, agents: agents)
        } catch {
            await browser.delete()
            await chromedriver.stop()
            for agent in agents { await agent.stop() }
            await server.child?.stop()
            throw error
        }
    }

    private static func startAgent(work: URL, name: String, server: String, join: String, simulate: String = "0s") throws -> ChildProcess {
        try ChildProcess("wharf-agent", [
            "--server", server, "--join", join, "--data-dir", work.appendingPathComponent("agent-\(name)").path,
            "--simulate", simulate,
        ], log: work.appendingPathComponent("agent-\(name).log"))
    }

    /// Starts another simulated agent (each job takes `simulate`) with a join token; it is stopped with the suite.
    func startAgent(name: String, join: String, simulate: String = "0s") throws -> ChildProcess {
        let agent = try Self.startAgent(work: workDirectory, name: name, server: baseURL, join: join, simulate: simulate)
        agents.withLock { $0.append(agent) }
        return agent
    }

    /// Ends the browser session, then stops chromedriver, the agents and the server by their PIDs,
    /// and removes the work directory (failure screenshots are kept elsewhere: `Paths.screenshots`).
    func stop() async {
        await browser.delete()
        await chromedriver.stop()
        for agent in agents.withLock({ $0 }) { await agent.stop() }
        await server.child?.stop()
        try? FileManager.default.removeItem(at: workDirectory)
    }
}

/// Gives the suite one `UIHarness` for all its tests, and stops it after the last one.
struct UIHarnessTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite ? self : nil
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let harness: UIHarness
        do {
            harness = try await UIHarness.start()
        } catch {
            // Every test runs and fails with the reason, so a missing browser is a failure, not a skip.
            try await UIHarness.$startFailure.withValue(String(describing: error)) { try await function() }
            return
        }
        do {
            try await UIHarness.$current.withValue(harness) { try await function() }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

extension Trait where Self == UIHarnessTrait {
    /// A real server, agent and headless Chromium for the suite.
    static var uiHarness: Self { UIHarnessTrait() }
}
