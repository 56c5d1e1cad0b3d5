import Foundation
import WharfTestSupport
import Testing

/// The real `wharf` binary against a real `wharf-server` and real `wharf-agent`s (simulating, so no
/// containers run), as a user drives them from a shell.
@Suite(.serialized)
struct CLIEndToEndTests {
    let compose = """
        services:
          web:
            image: nginx:${TAG:-1.27}
            environment:
              GREETING: ${GREETING:-none}
        """

    @Test(.timeLimit(.minutes(2)))
    func loginChecksTheServerAndSavesOwnerOnlySettings() async throws {
        try await World.run(login: false) { world in
            let badToken = try world.write("bad-token", "not-the-token\n")
            let refused = try await world.wharf(["login", "--server", world.url, "--token-file", badToken])
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stdout.isEmpty)
            #expect(refused.errorLines.count == 1 && refused.stderr.hasPrefix("error: ") && refused.stderr.contains("(unauthorized)"), "\(refused)")
            #expect(!FileManager.default.fileExists(atPath: world.configFile.path))

            let nowhere = "http://127.0.0.1:\(freePort())"
            let unreachable = try await world.wharf(["login", "--server", nowhere, "--token-file", world.tokenFile.path])
            #expect(unreachable.status != 0)
            #expect(unreachable.errorLines.count == 1, "\(unreachable)")
            #expect(unreachable.stderr.contains(nowhere) && unreachable.stderr.contains("(unreachable)"), "\(unreachable)")

            let missing = try await world.wharf(["login", "--server", world.url, "--token-file", world.root.path + "/nope"])
            #expect(missing.status != 0 && missing.stderr.contains("nope"), "\(missing)")

            let login = try await world.wharf(["login", "--server", world.url + "/", "--token-file", world.tokenFile.path])
            #expect(login.status == 0, "\(login)")
            #expect(login.stdout.contains("Logged in to \(world.url)"), "\(login)")
            let attributes = try FileManager.default.attributesOfItem(atPath: world.configFile.path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: world.configFile)) as? [String: String]
            #expect(saved?["server"] == world.url)
            #expect(saved?["token"] == world.token)

            // Later commands use the saved settings...
            let list = try await world.wharf(["env", "ls"])
            #expect(list.status == 0 && list.stdout.hasPrefix("NAME"), "\(list)")
            // ...unless WHARF_SERVER / WHARF_TOKEN say otherwise; the saved token never goes to
            // another server: that one needs a token of its own.
            let elsewhere = try await world.wharf(["env", "ls"], environment: ["WHARF_SERVER": nowhere])
            #expect(elsewhere.status != 0 && elsewhere.errorLines.count == 1, "\(elsewhere)")
            #expect(elsewhere.stderr.contains(nowhere) && elsewhere.stderr.contains("(not_logged_in)"), "\(elsewhere)")
            #expect(elsewhere.stderr.contains("WHARF_TOKEN") && !elsewhere.stderr.contains(world.token), "\(elsewhere)")
            let elsewhereWithToken = try await world.wharf(["env", "ls", "--server", nowhere], environment: ["WHARF_TOKEN": "other"])
            #expect(elsewhereWithToken.status != 0 && elsewhereWithToken.stderr.contains("(unreachable)"), "\(elsewhereWithToken)")
            let wrongToken = try await world.wharf(["env", "ls"], environment: ["WHARF_TOKEN": "wrong"])
            #expect(wrongToken.status != 0 && wrongToken.stderr.contains("(unauthorized)"), "\(wrongToken)")
            let flags = try await world.wharf(["env", "ls", "--json", "--server", world.url, "--token", world.token],
                                              environment: ["WHARF_SERVER": nowhere, "WHARF_TOKEN": "wrong"])
            #expect(flags.status == 0, "\(flags)")
            #expect(try flags.json()["environments"] is [Any])
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func environmentsAreAddedJoinedListedAndRemoved() async throws {
        try await World.run { world in
            let added = try await world.wharf(["env", "add", "prod-1"])
            #expect(added.status == 0, "\(added)")
            #expect(added.stdout.contains("wharf-agent --server \(world.url) --join join"), "\(added)")
            #expect(added.stdout.contains("--data-dir /var/lib/wharf-agent\n"), "\(added)")
            #expect(added.stdout.contains("curl -fsSL \(world.url)/install-agent.sh | sudo sh -s -- --join join"), "\(added)")
            #expect(!added.stdout.contains("--edge"))

            // The install line, as printed but with a real binary and --dry-run (and without sudo),
            // is one the server's install script accepts.
            let installLine = try #require(added.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("curl -fsSL ") }, "\(added)")
            #expect(installLine.hasSuffix(" --data-dir /var/lib/wharf-agent --binary /path/to/wharf-agent"), "\(installLine)")
            let agentBinary = world.products.appendingPathComponent("wharf-agent").path
            let dryRun = try await world.shell(installLine.replacingOccurrences(of: "| sudo sh", with: "| sh")
                .replacingOccurrences(of: "/path/to/wharf-agent", with: agentBinary) + " --dry-run")
            #expect(dryRun.status == 0 && dryRun.stderr.contains("dry run: nothing was changed"), "\(dryRun)")
            #expect(dryRun.stdout.contains("+ install -D -m 0755 \(agentBinary) /usr/local/bin/wharf-agent"), "\(dryRun)")
            #expect(dryRun.stdout.contains("WHARF_DATA_DIR=/var/lib/wharf-agent"), "\(dryRun)")
            // Found as the service user will find it (the test machine has it in a system plugin directory).
            #expect(dryRun.stderr.contains("compose: docker compose"), "\(dryRun)")
            // The unit it writes is the shipped one (deploy/systemd), directive for directive: a
            // revoked agent (exit 78) must not be restarted every 5 s by an installed unit.
            let written = dryRun.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                .drop { !$0.hasPrefix("+ write /etc/systemd/system/wharf-agent.service ") }.dropFirst()
                .prefix { $0.hasPrefix("|") }.map { String($0.dropFirst(4)) }
            let shipped = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../deploy/systemd/wharf-agent.service").standardized, encoding: .utf8)
            func directives<S: Sequence>(_ lines: S) -> [String] where S.Element: StringProtocol {
                lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
            }
            #expect(directives(written).contains("RestartPreventExitStatus=78"), "\(dryRun)")
            #expect(directives(written) == directives(shipped.split(separator: "\n")), "\(dryRun)")

            // The printed command, run as printed (plus the simulator), joins the environment.
            let agent = try world.startAgent(printedBy: added.stdout)
            // Connected, with what its hello said stored (the session comes first, the commit after it).
            let connected = try await eventually(timeout: .seconds(30)) {
                let list = try await world.wharf(["env", "ls", "--json"])
                let environments = try list.json()["environments"] as? [[String: Any]] ?? []
                let environment = environments.first { $0["name"] as? String == "prod-1" }
                return environment?["status"] as? String == "connected" && (environment?["agent"] as? [String: Any])?["version"] != nil
            }
            #expect(connected, "agent: \(agent.stderr)")

            let table = try await world.wharf(["env", "ls"])
            #expect(table.status == 0)
            let row = table.stdout.split(separator: "\n").first { $0.hasPrefix("prod-1 ") }.map(String.init) ?? ""
            let listed = try await world.wharf(["env", "ls", "--json"])
            let agentInfo = (try listed.json()["environments"] as? [[String: Any]])?.first?["agent"] as? [String: Any]
            let version = try #require(agentInfo?["version"] as? String)
            #expect(row.contains(" agent ") && row.contains(" connected ") && row.contains(" \(version) ") && row.contains("simulated"),
                    "\(table)")
            #expect(!row.contains("never"), "a connected environment has been seen: \(row)")

            let again = try await world.wharf(["env", "add", "prod-1"])
            #expect(again.status != 0 && again.stderr.contains("(name_taken)"), "\(again)")

            let second = try await world.wharf(["env", "add", "spare", "--json"])
            #expect(second.status == 0)
            let created = try second.json()
            let spareId = try #require((created["environment"] as? [String: Any])?["id"] as? String)
            #expect((created["joinToken"] as? String)?.isEmpty == false)

            let byId = try await world.wharf(["env", "rm", spareId])
            #expect(byId.status == 0 && byId.stdout.contains("removed"), "\(byId)")
            let byName = try await world.wharf(["env", "rm", "prod-1", "--json"])
            #expect(byName.status == 0, "\(byName)")
            let deleted = try #require(try byName.json()["deleted"] as? String, "\(byName)")
            #expect(deleted.hasPrefix("env_") && deleted != spareId, "\(byName)")
            let after = try await world.wharf(["env", "ls", "--json"])
            #expect((try after.json()["environments"] as? [Any])?.isEmpty == true, "\(after)")
            let unknown = try await world.wharf(["env", "rm", "prod-1"])
            #expect(unknown.status != 0 && unknown.errorLines.count == 1 && unknown.stderr.contains("(not_found)"), "\(unknown)")
        }
    }

    /// An agent whose agent.key is lost says so and stops (exit 78, which the unit does not restart);
    /// `wharf env join` gives a new token, with which the agent enrols a new key and is back.
    @Test(.timeLimit(.minutes(2)))
    func anAgentThatLostItsKeyStopsAndEnrolsAgainWithANewJoinToken() async throws {
        try await World.run { world in
            let added = try await world.wharf(["env", "add", "lost"])
            #expect(added.status == 0, "\(added)")
            let data = world.root.appendingPathComponent("lost-agent")
            func status() async throws -> String? {
                let list = try await world.wharf(["env", "ls", "--json"])
                return (try list.json()["environments"] as? [[String: Any]])?.first { $0["name"] as? String == "lost" }?["status"] as? String
            }
            let first = try world.startAgent(printedBy: added.stdout, dataDirectory: data)
            #expect(try await eventually(timeout: .seconds(30)) { try await status() == "connected" }, "\(first.stderr)")
            await first.stop()
            let key = data.appendingPathComponent("agent.key").path
            try FileManager.default.removeItem(atPath: key)

            // Without a token: a clear stop, and no new key made behind the user's back.
            let stranded = try world.runAgent(["--server", world.url, "--data-dir", data.path])
            #expect(await stranded.wait(timeout: .seconds(30)) == 78, "\(stranded.stderr)")
            #expect(stranded.stderr.contains("agent.key is missing") && stranded.stderr.contains("wharf env join"), "\(stranded.stderr)")
            await stranded.stop()
            #expect(!FileManager.default.fileExists(atPath: key))
            // With the spent token still on its command line (a unit that kept WHARF_JOIN): the
            // enrolment is refused, and the directory is left as it was, with the same clear stop.
            let spent = try world.startAgent(printedBy: added.stdout, dataDirectory: data)
            #expect(await spent.wait(timeout: .seconds(30)) == 78, "\(spent.stderr)")
            await spent.stop()
            #expect(spent.stderr.contains("agent.key is still missing"), "\(spent.stderr)")
            #expect(!FileManager.default.fileExists(atPath: key))
            #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("identity.json").path))
            // A server that cannot be reached is not a refusal: the directory is left as it was, and
            // the exit (1) lets the unit try again later.
            let away = try world.runAgent(["--server", "http://127.0.0.1:\(freePort())", "--join", "join_unreachable", "--data-dir", data.path])
            let awayStatus = await away.wait(timeout: .seconds(30))
            await away.stop()
            #expect(awayStatus != nil && awayStatus != 0 && awayStatus != 78, "\(String(describing: awayStatus)): \(away.stderr)")
            #expect(!FileManager.default.fileExists(atPath: key))
            #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("identity.json").path))

            let joined = try await world.wharf(["env", "join", "lost", "--agent-data-dir", "/srv/agent"])
            #expect(joined.status == 0, "\(joined)")
            #expect(joined.stdout.contains("--data-dir /srv/agent") && joined.stdout.contains("replaces this environment's current agent"), "\(joined)")
            let token = try #require(joined.stdout.split(separator: " ").first { $0.hasPrefix("join_") }.map(String.init), "\(joined)")
            #expect(!added.stdout.contains(token), "a new token")
            // The install script, in a dry run against this data directory, enrols again rather than keeping the old identity.
            let dryRun = try await world.shell("curl -fsSL \(world.url)/install-agent.sh | sh -s -- --join \(token) --data-dir \(data.path) "
                                               + "--binary \(world.products.appendingPathComponent("wharf-agent").path) --dry-run")
            #expect(dryRun.status == 0 && dryRun.stderr.contains("agent.key is missing: the agent enrols a new key"), "\(dryRun)")
            #expect(dryRun.stdout.contains("+ rm -f \(data.path)/identity.json"), "\(dryRun)")

            let back = try world.startAgent(printedBy: joined.stdout, dataDirectory: data)
            #expect(try await eventually(timeout: .seconds(30)) { try await status() == "connected" }, "\(back.stderr)")
            #expect(FileManager.default.fileExists(atPath: key))
            #expect(back.stderr.contains("enrolling a new key"), "\(back.stderr)")
            #expect(try await world.wharf(["env", "join", "nowhere"]).stderr.contains("(not_found)"))
        }
    }

    /// Agents reach the server at its public URL, which may not be the URL the CLI uses.
    @Test(.timeLimit(.minutes(2)))
    func envAddPrintsCommandsWithTheServersPublicURL() async throws {
        let publicURL = "https://wharf.example.test:8443"
        try await World.run(serverArguments: ["--public-url", publicURL + "/"]) { world in
            let added = try await world.wharf(["env", "add", "prod-1", "--agent-data-dir", "/srv/wharf-agent"])
            #expect(added.status == 0, "\(added)")
            #expect(added.stdout.contains("  wharf-agent --server \(publicURL) --join join_"), "\(added)")
            #expect(added.stdout.contains("  curl -fsSL \(publicURL)/install-agent.sh | sudo sh -s -- --join join_"), "\(added)")
            #expect(added.stdout.contains(" --data-dir /srv/wharf-agent --binary /path/to/wharf-agent\n"), "\(added)")
            #expect(!added.stdout.contains(world.url), "\(added)")
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func stacksDeployWithVariablesRedeployAndAreRemoved() async throws {
        try await World.run { world in
            try await world.connectedEnvironment("prod-1")
            let composeFile = try world.write("compose.yml", compose)
            let envFile = try world.write("app.env", """
                # stack settings
                TAG=1.27
                GREETING="hello # world"   # a comment
                export QUOTED='$not_expanded'
                """)

            let deploy = try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", composeFile,
                                                "--env-file", envFile, "-e", "TAG=1.28", "--health-timeout", "2m", "--wait"])
            #expect(deploy.status == 0, "\(deploy)")
            #expect(deploy.stdout.contains("created on prod-1"), "\(deploy)")
            // Live progress: the job's state changes and its log lines.
            #expect(deploy.stdout.contains(": succeeded (waited "), "\(deploy)")
            #expect(deploy.stdout.contains("  | simulated deploy of app"), "\(deploy)")

            let shown = try await world.wharf(["stack", "show", "app", "--json"])
            let stack = try #require(try shown.json()["stack"] as? [String: Any])
            let stackId = try #require(stack["id"] as? String)
            #expect(stack["env"] as? [String: String] == ["TAG": "1.28", "GREETING": "hello # world", "QUOTED": "$not_expanded"])
            #expect(stack["status"] as? String == "running")
            #expect(stack["healthTimeout"] as? Int == 120)

            let config = try await world.wharf(["stack", "config", "app"])
            #expect(config.status == 0 && config.stdout.contains("nginx:1.28") && config.stdout.contains("hello # world"), "\(config)")

            let human = try await world.wharf(["stack", "show", "app"])
            #expect(human.stdout.contains("Status:       running") && human.stdout.contains("TAG=1.28"), "\(human)")
            #expect(human.stdout.contains("Health wait:  up to 2m"), "\(human)")

            // The same name on the same environment is an update (PUT), not a second stack.
            let update = try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", composeFile, "-e", "TAG=1.29", "--wait"])
            #expect(update.status == 0 && update.stdout.contains("updated on prod-1"), "\(update)")
            let list = try await world.wharf(["stack", "ls", "--json"])
            let stacks = try list.json()["stacks"] as? [[String: Any]] ?? []
            #expect(stacks.count == 1 && stacks.first?["id"] as? String == stackId, "\(list)")
            #expect(stacks.first?["env"] as? [String: String] == ["TAG": "1.29"])
            #expect(stacks.first?["healthTimeout"] as? Int == 120, "an update without --health-timeout keeps the stack's")
            let table = try await world.wharf(["stack", "ls"])
            #expect(table.stdout.contains("app ") && table.stdout.contains("prod-1") && table.stdout.contains("web=nginx:1.29"), "\(table)")

            let redeploy = try await world.wharf(["stack", "redeploy", "app", "--no-pull", "--wait"])
            #expect(redeploy.status == 0 && redeploy.stdout.contains(": succeeded"), "\(redeploy)")

            // Jobs: three deploys of app, newest first.
            let jobs = try await world.wharf(["jobs", "ls", "--stack", "app", "--json"])
            let jobList = try jobs.json()["jobs"] as? [[String: Any]] ?? []
            #expect(jobList.count == 3, "\(jobs)")
            #expect(jobList.allSatisfy { $0["state"] as? String == "succeeded" && $0["kind"] as? String == "deploy" })
            let firstJob = try #require(jobList.last?["id"] as? String)
            let jobTable = try await world.wharf(["jobs", "ls", "--stack", "app"])
            #expect(jobTable.stdout.split(separator: "\n").filter { $0.contains(" app ") && $0.contains("succeeded") }.count == 3, "\(jobTable)")
            let show = try await world.wharf(["jobs", "show", firstJob])
            #expect(show.status == 0 && show.stdout.contains("State:        succeeded") && show.stdout.contains("nginx:1.28"), "\(show)")
            let showJSON = try await world.wharf(["jobs", "show", firstJob, "--json"])
            #expect((try showJSON.json()["job"] as? [String: Any])?["id"] as? String == firstJob)
            let logs = try await world.wharf(["jobs", "logs", firstJob])
            #expect(logs.status == 0 && logs.stdout == "simulated deploy of app\n", "\(logs)")
            let follow = try await world.wharf(["jobs", "logs", firstJob, "--follow"])
            #expect(follow.status == 0 && follow.stdout == "simulated deploy of app\n", "\(follow)")

            // An environment with stacks cannot go; the server's reason is shown.
            let inUse = try await world.wharf(["env", "rm", "prod-1"])
            #expect(inUse.status != 0 && inUse.stderr.contains("(environment_in_use)"), "\(inUse)")

            #expect(try await world.wharf(["stack", "rm", "app", "--forget", "--wait"]).status != 0, "--forget has no job to wait for")
            let remove = try await world.wharf(["stack", "rm", "app", "--wait"])
            #expect(remove.status == 0 && remove.stdout.contains("Stack app removed."), "\(remove)")
            let gone = try await world.wharf(["stack", "ls", "--json"])
            #expect((try gone.json()["stacks"] as? [Any])?.isEmpty == true, "\(gone)")
            let removedJobs = try await world.wharf(["jobs", "ls", "--stack", stackId, "--json"])
            #expect((try removedJobs.json()["jobs"] as? [Any])?.count == 4, "\(removedJobs)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aStackOfANodeThatIsGoneIsForgottenAndItsEnvironmentRemoved() async throws {
        try await World.run { world in
            // The node never comes: the stack's first deploy stays queued.
            let added = try await world.wharf(["env", "add", "gone"])
            #expect(added.status == 0, "\(added)")
            let composeFile = try world.write("compose.yml", compose)
            let deploy = try await world.wharf(["stack", "deploy", "app", "--env-name", "gone", "-f", composeFile])
            #expect(deploy.status == 0, "\(deploy)")
            #expect(try await world.wharf(["env", "rm", "gone"]).status != 0, "an environment with a stack cannot go")

            let forgotten = try await world.wharf(["stack", "rm", "app", "--forget"])
            #expect(forgotten.status == 0 && forgotten.stdout.contains("Stack app forgotten (1 unfinished job ended failed)"), "\(forgotten)")
            let stacks = try await world.wharf(["stack", "ls", "--json"])
            #expect((try stacks.json()["stacks"] as? [Any])?.isEmpty == true, "\(stacks)")
            let removed = try await world.wharf(["env", "rm", "gone"])
            #expect(removed.status == 0, "\(removed)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func webhooksAreEnabledUsedRotatedAndDisabled() async throws {
        try await World.run { world in
            try await world.connectedEnvironment("prod-1")
            let composeFile = try world.write("compose.yml", compose)
            let deploy = try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", composeFile, "--wait"])
            #expect(deploy.status == 0, "\(deploy)")

            // `$(wharf webhook enable app)` captures the URL and nothing else.
            let captured = try await world.shell(#"url=$("$WHARF" webhook enable app) || exit 7; printf '[%s]' "$url""#)
            #expect(captured.status == 0, "\(captured)")
            let pattern = #/http://127\.0\.0\.1:\d+/api/stacks/webhooks/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/#
            #expect(captured.stdout.hasPrefix("[") && captured.stdout.hasSuffix("]"), "\(captured)")
            let url = String(captured.stdout.dropFirst().dropLast())
            #expect(url.wholeMatch(of: pattern) != nil, "\(captured)")
            #expect(try await post(url) == 202)

            // Enabling again keeps the URL that CI systems already have.
            let again = try await world.wharf(["webhook", "enable", "app"])
            #expect(again.status == 0 && again.stdout == url + "\n", "\(again)")
            let shown = try await world.wharf(["stack", "show", "app"])
            #expect(shown.stdout.contains("Webhook:      \(url)"), "\(shown)")

            let rotated = try await world.wharf(["webhook", "rotate", "app"])
            #expect(rotated.status == 0, "\(rotated)")
            let newURL = rotated.stdout.trimmingCharacters(in: .newlines)
            #expect(rotated.stdout == newURL + "\n" && newURL != url && newURL.wholeMatch(of: pattern) != nil, "\(rotated)")
            #expect(try await post(url) == 404)
            #expect(try await post(newURL) == 202)

            let disabled = try await world.wharf(["webhook", "disable", "app"])
            #expect(disabled.status == 0 && disabled.stdout.contains("disabled"), "\(disabled)")
            #expect(try await post(newURL) == 404)

            let json = try await world.wharf(["webhook", "enable", "app", "--json"])
            let fresh = try #require(try json.json()["url"] as? String)
            #expect(fresh.hasPrefix(world.url + "/api/stacks/webhooks/") && fresh != newURL)
            let disabledJSON = try await world.wharf(["webhook", "disable", "app", "--json"])
            #expect(disabledJSON.status == 0, "\(disabledJSON)")
            let stackId = try #require(try disabledJSON.json()["disabled"] as? String, "\(disabledJSON)")
            #expect(stackId.hasPrefix("stk_"), "\(disabledJSON)")
            #expect(try await post(fresh) == 404)

            // The webhook calls above made jobs with the webhook as their trigger.
            let jobs = try await world.wharf(["jobs", "ls", "--stack", "app"])
            #expect(jobs.stdout.split(separator: "\n").filter { $0.contains(" webhook ") }.count >= 2, "\(jobs)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func edgeEnvironmentsJoinWithEdgeAndRefuseWebhooks() async throws {
        try await World.run { world in
            let added = try await world.wharf(["env", "add", "pi", "--edge"])
            #expect(added.status == 0, "\(added)")
            let agentLine = added.stdout.split(separator: "\n").first { $0.contains("wharf-agent --server") } ?? ""
            #expect(agentLine.hasSuffix(" --edge"), "\(added)")
            #expect(added.stdout.contains("| sudo sh -s -- --join join") && added.stdout.contains(" --edge --binary /path/to/wharf-agent\n"), "\(added)")
            try world.startAgent(printedBy: added.stdout, extra: ["--checkin-interval", "1s"])

            let composeFile = try world.write("compose.yml", compose)
            let deploy = try await world.wharf(["stack", "deploy", "app", "--env-name", "pi", "-f", composeFile, "--wait"])
            #expect(deploy.status == 0, "\(deploy)")
            #expect(deploy.stdout.contains("edge environment") && deploy.stdout.contains(": succeeded"), "\(deploy)")

            let refused = try await world.wharf(["webhook", "enable", "app"])
            #expect(refused.status != 0)
            #expect(refused.stdout.isEmpty, "nothing a `$(…)` could mistake for a URL: \(refused)")
            #expect(refused.errorLines.count == 1, "\(refused)")
            #expect(refused.stderr.hasPrefix("error: ") && refused.stderr.hasSuffix("(edge_environment)\n"), "\(refused)")
            #expect(refused.stderr.lowercased().contains("edge"), "\(refused)")

            // A second `app` elsewhere makes the bare name ambiguous; --env-name settles it.
            try await world.connectedEnvironment("prod-1")
            let other = try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", composeFile, "--wait"])
            #expect(other.status == 0 && other.stdout.contains("created on prod-1"), "\(other)")
            let ambiguous = try await world.wharf(["stack", "show", "app"])
            #expect(ambiguous.status != 0 && ambiguous.stderr.contains("(ambiguous)") && ambiguous.stderr.contains("pi"), "\(ambiguous)")
            let chosen = try await world.wharf(["webhook", "enable", "app", "--env-name", "prod-1"])
            #expect(chosen.status == 0 && chosen.stdout.hasPrefix(world.url + "/api/stacks/webhooks/"), "\(chosen)")
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func followingALogAndWaitingWithJSONOutput() async throws {
        try await World.run { world in
            // No agent yet: the job stays queued, and `--follow` keeps waiting for it.
            let added = try await world.wharf(["env", "add", "late"])
            #expect(added.status == 0)
            let composeFile = try world.write("compose.yml", compose)
            let deploy = try await world.wharf(["stack", "deploy", "app", "--env-name", "late", "-f", composeFile, "--json"])
            #expect(deploy.status == 0, "\(deploy)")
            let jobId = try #require((try deploy.json()["job"] as? [String: Any])?["id"] as? String)

            let follow = try world.startWharf(["jobs", "logs", jobId, "--follow"])
            try await Task.sleep(for: .seconds(1))
            #expect(follow.isRunning, "follow ended before the job did: \(follow.stdout) \(follow.stderr)")
            #expect(follow.stdout.isEmpty)

            try world.startAgent(printedBy: added.stdout)
            // An agent's start, enrolment and connect, the job and the follow's poll: slow on a loaded machine.
            let followed = try await world.finish(follow, timeout: .seconds(90))
            #expect(followed.status == 0 && followed.stdout == "simulated deploy of app\n", "\(followed)")

            // --wait --json: progress on stderr, the finished job's JSON alone on stdout.
            let waited = try await world.wharf(["stack", "deploy", "app", "--env-name", "late", "-f", composeFile, "-e", "TAG=2", "--wait", "--json"])
            #expect(waited.status == 0, "\(waited)")
            let job = try #require(try waited.json()["job"] as? [String: Any])
            #expect(job["state"] as? String == "succeeded")
            #expect(waited.stderr.contains("simulated deploy of app"), "\(waited)")

            for arguments in [["stack", "ls", "--json"], ["stack", "show", "app", "--json"], ["stack", "config", "app", "--json"],
                              ["jobs", "ls", "--json"], ["env", "ls", "--json"], ["stack", "redeploy", "app", "--json"]] {
                let run = try await world.wharf(arguments)
                #expect(run.status == 0, "\(arguments): \(run)")
                #expect((try? run.json()) != nil, "\(arguments) printed no JSON: \(run)")
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func failuresAreOneLineErrorsWithANonZeroStatus() async throws {
        try await World.run { world in
            func expectOneLine(_ run: CLIRun, code: String, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(run.status != 0, "\(run)", sourceLocation: sourceLocation)
                #expect(run.stdout.isEmpty, "\(run)", sourceLocation: sourceLocation)
                #expect(run.errorLines.count == 1, "\(run)", sourceLocation: sourceLocation)
                #expect(run.stderr.hasPrefix("error: ") && run.stderr.hasSuffix("(\(code))\n"), "\(run)", sourceLocation: sourceLocation)
                #expect(run.stderr.contains(text), "\(run)", sourceLocation: sourceLocation)
            }
            expectOneLine(try await world.wharf(["stack", "show", "nope"]), code: "not_found", mentioning: "no stack named 'nope'")
            expectOneLine(try await world.wharf(["webhook", "enable", "nope"]), code: "not_found", mentioning: "'nope'")
            expectOneLine(try await world.wharf(["jobs", "show", "job_0000"]), code: "not_found", mentioning: "ob")
            let nowhere = "http://127.0.0.1:\(freePort())"
            // (Another server needs a token of its own: the saved one goes only to the saved server.)
            expectOneLine(try await world.wharf(["stack", "ls"], environment: ["WHARF_SERVER": nowhere, "WHARF_TOKEN": "t"]),
                          code: "unreachable", mentioning: nowhere)

            #expect(try await world.wharf(["env", "add", "prod-1"]).status == 0)
            let composeFile = try world.write("compose.yml", compose)
            expectOneLine(try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", world.root.path + "/missing.yml"]),
                          code: "file_not_found", mentioning: "missing.yml")
            let badEnv = try world.write("bad.env", "OK=1\nNOT VALID\n")
            expectOneLine(try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", composeFile, "--env-file", badEnv]),
                          code: "invalid_env_file", mentioning: "bad.env line 2")
            expectOneLine(try await world.wharf(["stack", "deploy", "app", "--env-name", "nowhere", "-f", composeFile]),
                          code: "not_found", mentioning: "no environment named 'nowhere'")
            expectOneLine(try await world.wharf(["stack", "deploy", "Bad Name", "--env-name", "prod-1", "-f", composeFile]),
                          code: "invalid_name", mentioning: "stack name")
            let broken = try world.write("broken.yml", "services:\n  web:\n    image: [unclosed\n")
            let rejected = try await world.wharf(["stack", "deploy", "app", "--env-name", "prod-1", "-f", broken])
            #expect(rejected.status != 0 && rejected.errorLines.count == 1 && rejected.stderr.hasPrefix("error: "), "\(rejected)")

            let usage = try await world.wharf(["stack", "deploy", "app"])
            #expect(usage.status != 0 && usage.stderr.contains("--env-name"), "\(usage)")
            for run in [rejected, usage] {
                #expect(!run.stderr.contains("Fatal error") && !run.stderr.contains("Stack dump"))
            }
        }
    }
}
