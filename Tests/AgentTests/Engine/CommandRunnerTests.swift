import Foundation
import Synchronization
import Testing

@testable import WharfAgent

/// The child-process runner under every docker and compose call. (The tests use `/bin/sh` to
/// make misbehaving children; the driver itself never runs a shell.)
struct CommandRunnerTests {
    let shell = "/bin/sh"

    @Test("a child gets exactly the environment it is given", .timeLimit(.minutes(1)))
    func environmentIsExact() async throws {
        let runner = CommandRunner(environment: ["PATH": "/usr/bin:/bin", "ONLY": "a \"b\" $c\nd"])
        let env = try #require(ExecutableLookup.find("env", searchPath: "/usr/bin:/bin"))
        let result = try await runner.run(env, ["-0"], timeout: .seconds(10), captureLimit: 1 << 16)
        #expect(result.succeeded)
        let variables = Set(result.standardOutput.split(separator: "\0").map(String.init))
        #expect(variables == ["PATH=/usr/bin:/bin", "ONLY=a \"b\" $c\nd"])
    }

    @Test("a child that outruns its time limit is torn down with its whole process group", .timeLimit(.minutes(1)))
    func timeoutKillsProcessGroup() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-runner-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: pidFile) }
        let runner = CommandRunner(environment: ["PATH": "/usr/bin:/bin"], gracePeriod: .seconds(1))
        let clock = ContinuousClock()
        let start = clock.now
        // A grandchild in the background records its PID; the teardown must reach it too.
        let result = try await runner.run(
            shell,
            ["-c", "sh -c 'echo $$ > \(pidFile.path); exec sleep 60' & echo started; sleep 60"],
            // Long enough for the shell to print and the grandchild to write its PID on a loaded machine.
            timeout: .seconds(10)
        )
        #expect(result.timedOut)
        #expect(!result.succeeded)
        #expect(result.tail == ["started"])
        // Generous: the machine is shared, and only "long before the 60 s sleeps end" matters.
        #expect(clock.now - start < .seconds(30))
        let pid = try #require(Int32(try String(contentsOf: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        var alive = true
        for _ in 0..<100 where alive {
            alive = kill(pid, 0) == 0
            if alive { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!alive, "a grandchild survived the teardown")
    }

    @Test("lines stream while the child runs, capped in length, with the exit code checked", .timeLimit(.minutes(1)))
    func linesStream() async throws {
        let runner = CommandRunner(environment: ["PATH": "/usr/bin:/bin"])
        let seen = Mutex<[String]>([])
        let long = String(repeating: "x", count: 10_000)
        // The child goes on only once this side has had its first line (a file appears), so a runner
        // that held the lines back until the child ended would let it run into its time limit. No
        // clocks: a loaded machine only makes it slower.
        let go = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-runner-go-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: go) }
        let result = try await runner.run(
            shell,
            ["-c", "echo first; while [ ! -e \(go.path) ]; do sleep 0.02; done; echo \(long); echo oops >&2; exit 7"],
            timeout: .seconds(20),
            lines: { line in
                seen.withLock { $0.append(line) }
                if line == "first" { FileManager.default.createFile(atPath: go.path, contents: nil) }
            }
        )
        #expect(result.status == .exited(7), "the first line did not arrive while the child ran")
        #expect(result.endDescription == "exit code 7")
        let lines = seen.withLock { $0 }
        // Standard output and standard error are separate pipes: only each one's own order is fixed.
        #expect(lines.first == "first")
        #expect(
            Set(lines) == ["first", String(repeating: "x", count: LineSplitter.defaultMaxLineBytes) + " …", "oops"]
        )
        #expect(lines.count == 3)
    }

    @Test("captured output stops at its limit and says so", .timeLimit(.minutes(1)))
    func captureLimit() async throws {
        let runner = CommandRunner(environment: ["PATH": "/usr/bin:/bin"])
        let result = try await runner.run(shell, ["-c", "head -c 100000 /dev/zero"], timeout: .seconds(10), captureLimit: 1000)
        #expect(result.succeeded)
        #expect(result.standardOutput.utf8.count == 1000)
        #expect(result.standardOutputTruncated)
    }
}
