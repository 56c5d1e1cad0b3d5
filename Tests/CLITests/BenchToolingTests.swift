import Foundation
import WharfTestSupport
import Testing

/// The benchmark suite's own tools (`bench/`), run for real against a real `wharf-server`: the
/// simulated fleet (`wharf-agent --fleet N`, real CURVE connections), the load client
/// (`bench/http/httpburst.c`: the scale round's burst, and paced through `wharfbench.py paced`), the analyser
/// (`wharfbench.py`) and the report builder (`bench/lib/report.py`). The timed
/// runs stay in `make bench`; this checks that the tools measure what they say they measure.
@Suite(.serialized)
struct BenchToolingTests {
    static let bench = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench")

    @Test(.timeLimit(.minutes(3)), arguments: ["epoll", "fds"])
    func fleetAndLoadClientRunARoundWhereEveryJobIsFinal(poll: String) async throws {
        try await World.run(login: false) { world in
            let fleetLog = world.root.appendingPathComponent("fleet.jsonl")
            let fleetData = world.root.appendingPathComponent("fleet-data")
            let database = world.dataDirectory.appendingPathComponent("wharf.sqlite").path
            let fleet = try Child(world.products.appendingPathComponent("wharf-agent"), [
                "--fleet", "3", "--server", world.url, "--admin-token-file", world.tokenFile.path,
                "--data-dir", fleetData.path, "--fleet-log", fleetLog.path, "--fleet-prefix", "bt", "--fleet-poll", poll,
            ], environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WHARF_") },
               logs: world.root.appendingPathComponent("logs"), name: "fleet")
            defer { fleet.signal(SIGTERM) }
            let connected = await eventually(timeout: .seconds(60)) {
                Self.lines(fleetLog).contains { $0["event"] as? String == "connected" }
            }
            #expect(connected, "the fleet never logged 'connected':\n\(fleet.stderr)\(fleet.stdout)")
            let event = try #require(Self.lines(fleetLog).first { $0["event"] as? String == "connected" })
            #expect(event["agents"] as? Double == 3, "\(event)")

            // The server sees three connected environments, named as the fleet says.
            let list = try await world.shell("curl -sf -H 'Authorization: Bearer \(world.token)' \(world.url)/api/environments")
            let environments = try list.json()["environments"] as? [[String: Any]] ?? []
            #expect(Set(environments.compactMap { $0["name"] as? String }) == ["bt-0", "bt-1", "bt-2"], "\(list)")
            #expect(environments.allSatisfy { $0["status"] as? String == "connected" }, "\(list)")

            // Two stacks with webhooks on each environment; their first deploys drain.
            let paths = world.root.appendingPathComponent("paths.txt").path
            let setup = try await world.shell(Self.wharfbench("setup", "--url", world.url, "--token-file", world.tokenFile.path,
                                                             "--prefix", "bt", "--envs", "3", "--stacks-per-env", "2", "--out", paths))
            #expect(setup.status == 0, "\(setup)")
            #expect(try setup.json()["stacks"] as? Int == 6, "\(setup)")
            // Until no job is open (wharfbench's own wait, as the suite uses it between parts).
            func waitIdle() async throws {
                let idle = try await world.shell(Self.wharfbench("wait-idle", "--url", world.url, "--token-file", world.tokenFile.path,
                                                                "--timeout", "60"))
                #expect(try idle.json()["idle"] as? Bool == true, "\(idle)")
            }
            try await waitIdle()
            let urls = try String(contentsOfFile: paths, encoding: .utf8).split(separator: "\n")
            #expect(urls.count == 6 && urls.allSatisfy { $0.hasPrefix("/api/stacks/webhooks/") }, "\(urls)")

            // A burst of one call per stack (the scale part's C sender, built as `make bench` builds
            // it; 8 connections for 6 calls, so two carry none), its summary, then the analysis the
            // scale part uses.
            let client = world.root.appendingPathComponent("client.jsonl").path
            let sender = world.root.appendingPathComponent("httpburst").path
            let built = try await world.shell("\"$(command -v cc || command -v clang)\" -O2 -Wall -o '\(sender)' '\(Self.bench.appendingPathComponent("http/httpburst.c").path)'")
            #expect(built.status == 0, "\(built)")
            let burst = try await world.shell("'\(sender)' '\(world.url)' '\(paths)' 8 '\(client)' && " + Self.wharfbench("client-summary", "--client", client))
            #expect(burst.status == 0, "\(burst)")
            #expect(try burst.json()["statuses"] as? [String: Int] == ["202": 6], "\(burst)")
            #expect(try burst.json()["requests"] as? Int == 6, "\(burst)")
            let lineStatuses = Self.lines(URL(fileURLWithPath: client)).compactMap { $0["status"] as? Int }
            #expect(lineStatuses == Array(repeating: 202, count: 6), "one line per path: \(lineStatuses)")
            let round = world.root.appendingPathComponent("round.json").path
            let analysed = try await world.shell(Self.wharfbench("round", "--client", client, "--fleet", fleetLog.path,
                                                                "--db", database,
                                                                "--out", round, "--timeout", "60"))
            #expect(analysed.status == 0, "\(analysed)")
            let result = try analysed.json()
            #expect(result["jobs"] as? Int == 6 && result["jobsFinal"] as? Int == 6 && result["jobsLost"] as? Int == 0, "\(result)")
            #expect((result["allFinalSeconds"] as? Double).map { $0 > 0 } == true, "\(result)")

            // Each of those jobs is in the fleet's log once, its times in order, and succeeded in the store.
            let ids = Set(Self.lines(URL(fileURLWithPath: client)).compactMap { $0["job"] as? String })
            #expect(ids.count == 6)
            let jobLines = Self.lines(fleetLog).filter { ids.contains($0["job"] as? String ?? "") }
            #expect(Set(jobLines.compactMap { $0["job"] as? String }) == ids, "\(jobLines)")
            for line in jobLines {
                let received = try #require(line["received"] as? Double)
                let sent = try #require(line["resultSent"] as? Double)
                let acked = try #require(line["resultAcked"] as? Double)
                #expect(received <= sent && sent <= acked, "\(line)")
                #expect((line["agent"] as? String)?.hasPrefix("bt-") == true, "\(line)")
            }
            for id in ids {
                let job = try await world.shell("curl -sf -H 'Authorization: Bearer \(world.token)' \(world.url)/api/jobs/\(id)")
                #expect((try job.json()["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(job)")
            }

            // A paced run (the dispatch part's client: the same sender, each call at its scheduled time) and its analysis.
            let paced = world.root.appendingPathComponent("paced.jsonl").path
            let sent = try await world.shell(Self.wharfbench("paced", "--url", world.url, "--paths", paths, "--rate", "12",
                                                            "--duration", "1", "--conns", "2", "--out", paced, "--sender", sender))
            #expect(try sent.status == 0 && sent.json()["requests"] as? Int == 12, "\(sent)")
            // Call i is due 1/12 s after call i-1, and is not sent before it is due.
            let pacedLines = Self.lines(URL(fileURLWithPath: paced)).filter { $0["job"] != nil }
            let scheduled = pacedLines.compactMap { $0["scheduled"] as? Double }
            #expect(scheduled.count == 12, "\(pacedLines)")
            for (earlier, later) in zip(scheduled, scheduled.dropFirst()) {
                #expect(abs(later - earlier - 1.0 / 12) < 0.001, "\(scheduled)")
            }
            for line in pacedLines {
                #expect(try #require(line["sent"] as? Double) >= #require(line["scheduled"] as? Double), "\(line)")
            }
            try await waitIdle()
            // The fleet writes its log every 50 ms: wait until it has every paced job's acknowledged result.
            let pacedJobs = Set(pacedLines.compactMap { $0["job"] as? String })
            #expect(await eventually {
                Set(Self.lines(fleetLog).filter { $0["resultAcked"] != nil }.compactMap { $0["job"] as? String }).isSuperset(of: pacedJobs)
            }, "the fleet's log lacks some of \(pacedJobs)")
            let latency = world.root.appendingPathComponent("dispatch.json").path
            let dispatched = try await world.shell(Self.wharfbench("dispatch", "--client", paced, "--fleet", fleetLog.path,
                                                                  "--db", database,
                                                                  "--out", latency, "--label", "test"))
            #expect(dispatched.status == 0, "\(dispatched)")
            let figures = try dispatched.json()
            let jobs = try #require(figures["jobs"] as? Int, "\(figures)")
            // 12 calls over 6 stacks: each a new job, or joined to one still queued (then counted once).
            #expect(figures["calls"] as? Int == 12 && (6...12).contains(jobs) && figures["notFinal"] as? Int == 0, "\(figures)")
            #expect(figures["statuses"] as? [String: Int] == ["202": 12], "\(figures)")
            for key in ["holdAfter202Ms", "finalAfterResultMs", "ackAfterResultMs"] {
                let summary = try #require(figures[key] as? [String: Any], "\(key): \(figures)")
                #expect(summary["n"] as? Int == jobs, "\(key): \(summary)")
            }
            let held = try #require(figures["holdAfterSendMs"] as? [String: Any])
            #expect((held["p50"] as? Double).map { $0 > 0 } == true, "a job is held after its call is sent: \(held)")

            // The fleet keeps its keys: a restart reuses the three environments instead of making new ones.
            fleet.signal(SIGTERM)
            #expect(await fleet.wait(timeout: .seconds(20)) == 0, "\(fleet.stderr)")
            let again = try Child(world.products.appendingPathComponent("wharf-agent"), [
                "--fleet", "3", "--server", world.url, "--admin-token-file", world.tokenFile.path,
                "--data-dir", fleetData.path, "--fleet-prefix", "bt", "--fleet-enrol-only",
            ], environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WHARF_") },
               logs: world.root.appendingPathComponent("logs"), name: "fleet-again")
            defer { again.signal(SIGTERM) }
            #expect(await again.wait(timeout: .seconds(30)) == 0, "\(again.stderr)")
            let after = try await world.shell("curl -sf -H 'Authorization: Bearer \(world.token)' \(world.url)/api/environments")
            #expect((try after.json()["environments"] as? [Any])?.count == 3, "\(after)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func reportHasALinePerGoalWithItsBaselineAndRatio() throws {
        // The committed parts, rebuilt into a scratch folder (the committed report is not touched).
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-report-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("parts"), withIntermediateDirectories: true)
        let parts = Self.bench.appendingPathComponent("results/parts")
        for name in try FileManager.default.contentsOfDirectory(atPath: parts.path) where name.hasSuffix(".json") {
            try FileManager.default.copyItem(at: parts.appendingPathComponent(name), to: scratch.appendingPathComponent("parts/\(name)"))
        }
        let run = try runToEnd("/usr/bin/python3", [Self.bench.appendingPathComponent("lib/report.py").path, scratch.path, "0"])
        #expect(run.status == 0, "\(run.output)")

        let latest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("latest.json"))) as? [String: Any])
        let goals = try #require(latest["goals"] as? [[String: Any]])
        #expect(goals.compactMap { $0["goal"] as? String } == ["1a", "1b", "2", "3a", "3b", "4a", "4b", "5"], "\(goals)")
        #expect(goals.allSatisfy { $0["met"] is Bool && $0["value"] != nil && $0["target"] != nil }, "\(goals)")
        let figures = try #require(latest["figures"] as? [[String: Any]])
        #expect(!figures.isEmpty)
        for figure in figures {
            let baseline = try #require(figure["baseline"] as? [String: Any], "\(figure)")
            if let value = figure["value"] as? Double, let base = baseline["value"] as? Double, base != 0, let ratio = figure["ratio"] as? Double {
                #expect(abs(ratio - value / base) < 0.001, "\(figure)")
            }
        }
        let markdown = try String(contentsOf: scratch.appendingPathComponent("latest.md"), encoding: .utf8)
        let lines = markdown.split(separator: "\n")
        for goal in goals {
            let id = goal["goal"] as? String ?? "?"
            let verdict = goal["met"] as? Bool == true ? ": met**" : ": MISSED**"
            #expect(lines.contains { $0.hasPrefix("- **\(id). ") && $0.contains(verdict) && $0.contains("target ") },
                    "no line for goal \(id) in:\n\(markdown)")
        }
    }

    // MARK: - helpers

    /// A shell command line running `bench/lib/wharfbench.py` with these arguments.
    static func wharfbench(_ arguments: String...) -> String {
        (["python3", bench.appendingPathComponent("lib/wharfbench.py").path] + arguments).map { "'\($0)'" }.joined(separator: " ")
    }

    /// The JSON objects of a JSON-lines file (none if it does not exist yet).
    static func lines(_ url: URL) -> [[String: Any]] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}
