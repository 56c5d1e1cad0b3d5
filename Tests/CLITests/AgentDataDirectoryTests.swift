import Foundation
import WharfTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One `wharf-agent` per data directory: real agent processes (simulating, so no containers run)
/// against a real server.
@Suite(.serialized)
struct AgentDataDirectoryTests {
    @Test("a second agent on a data directory in use refuses to start and names the first; a killed agent leaves no lock",
          .timeLimit(.minutes(2)))
    func oneAgentPerDataDirectory() async throws {
        try await World.run { world in
            let added = try await world.wharf(["env", "add", "solo"])
            #expect(added.status == 0, "\(added)")
            let directory = world.root.appendingPathComponent("solo-agent")
            let first = try world.startAgent(printedBy: added.stdout, dataDirectory: directory)
            let connected = try await eventually(timeout: .seconds(30)) { (first.stdout + first.stderr).contains("connected to server") }
            #expect(connected, "the first agent never connected:\n\(first.stderr)")

            // The same command again, on the same directory: it stops before touching anything.
            let journal = directory.appendingPathComponent("jobs")
            let before = try? FileManager.default.contentsOfDirectory(atPath: journal.path).sorted()
            let second = try world.startAgent(printedBy: added.stdout, dataDirectory: directory)
            let status = await second.wait(timeout: .seconds(20))
            #expect(status != nil && status != 0, "the second agent did not refuse: \(String(describing: status))\n\(second.stderr)")
            #expect(second.stderr.contains("another wharf-agent (process \(first.pid)) is using the data directory \(directory.path)"),
                    "\(second.stderr)")
            #expect(!(second.stdout + second.stderr).contains("connected to server"), "\(second.stdout)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: journal.path).sorted()) == before)
            #expect(first.isRunning, "the first agent stopped:\n\(first.stderr)")
            #expect(try await eventually {
                let list = try await world.wharf(["env", "ls", "--json"])
                let environments = try list.json()["environments"] as? [[String: Any]] ?? []
                return environments.contains { $0["name"] as? String == "solo" && $0["status"] as? String == "connected" }
            }, "the first agent's environment is not shown connected")

            // SIGKILL ends the lock with the process: the next agent starts and connects.
            first.signal(SIGKILL)
            await first.wait()
            let third = try world.startAgent(printedBy: added.stdout, dataDirectory: directory)
            let reconnected = try await eventually(timeout: .seconds(30)) { (third.stdout + third.stderr).contains("connected to server") }
            #expect(reconnected, "the agent after the killed one never connected:\n\(third.stderr)")
            #expect(third.isRunning, "\(third.stderr)")
        }
    }
}
