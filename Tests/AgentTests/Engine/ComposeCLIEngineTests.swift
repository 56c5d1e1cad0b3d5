import Foundation
import Testing

@testable import WharfAgent

/// Deploy scenarios on a real Docker engine and real registries, for both compose flavours.
///
/// Needs `WHARF_TEST_DOCKER_HOST`, `WHARF_TEST_REGISTRY`, `WHARF_TEST_AUTH_REGISTRY`,
/// `WHARF_TEST_AUTH_USER` and `WHARF_TEST_AUTH_PASSWORD`; fails (never skips) without them.
@Suite("ComposeCLIEngine on a real engine", .serialized)
struct ComposeCLIEngineTests {
    static let flavours: [ComposeFlavour] = [.plugin, .standalone]

    @Test("a redeploy of the same tag runs the newly pushed content", .timeLimit(.minutes(4)), arguments: flavours)
    func redeploySameTagRunsPushedContent(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "same-tag") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let compose = TestStacks.web(image: scenario.image("v1"))
            let job = scenario.deployment(compose: compose, images: ["web": scenario.image("v1")])

            let (first, firstLog) = await scenario.deploy(job)
            #expect(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            let firstContainer = try #require(try await scenario.runningContainers().first)
            let firstImageID = try await scenario.docker.inspect(firstContainer).image
            #expect(first.services == [ServiceOutcome(name: "web", image: scenario.image("v1"), imageId: firstImageID, containers: 1)])

            try await scenario.images.build(scenario.image("v1"), content: "v1 rebuilt")
            let (second, secondLog) = await scenario.deploy(job)
            #expect(second.state == .succeeded, "\(second.errorMessage ?? "")\n\(secondLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1 rebuilt") == "v1 rebuilt")
            let service = try #require(second.services.first)
            #expect(service.imageId != firstImageID)
            #expect(service.imageId.hasPrefix("sha256:"))

            for step in ["pulling images", "recording running images", "starting services", "waiting for health (timeout 30s)"] {
                #expect(secondLog.lines.contains(step), "missing step line \"\(step)\"")
            }
        }
    }

    @Test("the plan's tag wins over the compose file's", .timeLimit(.minutes(3)), arguments: flavours)
    func planTagWins(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "plan-tag") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("v2"), content: "v2")
            let compose = TestStacks.web(image: scenario.image("v1"))
            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("v2")])
            )
            #expect(outcome.state == .succeeded, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(outcome.services.first?.image == scenario.image("v2"))
            #expect(await waitForBody(port: scenario.port, expected: "v2") == "v2")
        }
    }

    @Test("stack variables pick the image through ${SERVICE_TAG:-stable}", .timeLimit(.minutes(3)), arguments: flavours)
    func variablesPickTheImage(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "svc-tag") { scenario in
            try await scenario.images.build(scenario.image("stable"), content: "stable")
            try await scenario.images.build(scenario.image("development"), content: "development")
            let compose = TestStacks.web(image: "\(scenario.repository):${SERVICE_TAG:-stable}")

            let (stable, stableLog) = await scenario.deploy(scenario.deployment(compose: compose, images: [:]))
            #expect(stable.state == .succeeded, "\(stable.errorMessage ?? "")\n\(stableLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "stable") == "stable")

            let (development, developmentLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: [:], environment: ["SERVICE_TAG": "development"])
            )
            #expect(development.state == .succeeded, "\(development.errorMessage ?? "")\n\(developmentLog.text)")
            #expect(development.services.first?.image == scenario.image("development"))
            #expect(await waitForBody(port: scenario.port, expected: "development") == "development")
        }
    }

    @Test("a tag that does not exist fails the pull and leaves the running container alone", .timeLimit(.minutes(3)), arguments: flavours)
    func missingTagFailsPull(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "no-tag") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let compose = TestStacks.web(image: scenario.image("v1"))
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            let before = try await scenario.runningContainers()

            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("no-such-tag")])
            )
            #expect(outcome.state == .failed)
            #expect(outcome.errorCode == .pullFailed)
            let message = outcome.errorMessage ?? ""
            #expect(message.contains("not found") || message.contains("manifest unknown"), "\(message)")
            #expect(!log.lines.contains("starting services"), "compose up must not run after a failed pull")
            #expect(try await scenario.runningContainers() == before)
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
        }
    }

    @Test("a container that exits at once is rolled back to the previous image", .timeLimit(.minutes(3)), arguments: flavours)
    func crashRollsBack(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "crash") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let compose = TestStacks.web(image: scenario.image("v1"))
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            let v1ImageID = try #require(first.services.first?.imageId)

            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("crash")])
            )
            #expect(outcome.state == .rolledBack, "\(log.text)")
            #expect(outcome.errorCode == .unhealthy)
            #expect(outcome.errorMessage?.contains("exited with code 3") == true, "\(outcome.errorMessage ?? "")")
            #expect(log.lines.contains("rolling back to previous images"))
            #expect(log.lines.contains { $0.contains("crashing on purpose") }, "the container's own output is in the job log")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            let running = try await scenario.runningContainers()
            #expect(running.count == 1)
            if let container = running.first {
                #expect(try await scenario.docker.inspect(container).image == v1ImageID)
            }
        }
    }

    @Test("a failing healthcheck is rolled back to the previous image", .timeLimit(.minutes(3)), arguments: flavours)
    func unhealthyRollsBack(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "unhealthy") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("sick"), content: "sick", behaviour: .webWithoutHealth)
            let compose = TestStacks.web(image: scenario.image("v1"), probe: .http(startPeriod: nil))
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")

            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("sick")])
            )
            #expect(outcome.state == .rolledBack, "\(log.text)")
            #expect(outcome.errorCode == .unhealthy)
            #expect(outcome.errorMessage?.contains("unhealthy") == true, "\(outcome.errorMessage ?? "")")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            let container = try #require(try await scenario.runningContainers().first)
            #expect(try await scenario.docker.inspect(container).state.health?.status == "healthy")
        }
    }

    @Test("services still starting at the health timeout fail with timeout and roll back", .timeLimit(.minutes(3)), arguments: flavours)
    func slowHealthTimesOut(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "slow") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("slow"), content: "slow", behaviour: .webWithoutHealth)
            // During the start period failed probes do not count: the new container stays "starting".
            let compose = TestStacks.web(image: scenario.image("v1"), probe: .http(startPeriod: "120s"))
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")

            let clock = ContinuousClock()
            let start = clock.now
            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("slow")], healthTimeout: .seconds(5))
            )
            #expect(outcome.state == .rolledBack, "\(log.text)")
            #expect(outcome.errorCode == .timeout)
            #expect(outcome.errorMessage?.contains("starting") == true, "\(outcome.errorMessage ?? "")")
            // Well before the image's 120-s start period, with room for a loaded engine.
            #expect(clock.now - start < .seconds(100))
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
        }
    }

    @Test("a failing compose up is rolled back with compose_failed", .timeLimit(.minutes(3)), arguments: flavours)
    func failedUpRollsBack(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "up-fails") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let compose = TestStacks.web(image: scenario.image("v1"))
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")

            // Without a pull step, `up` itself has to fetch the missing tag, and fails.
            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("never-pushed")], pull: false)
            )
            #expect(outcome.state == .rolledBack, "\(log.text)")
            #expect(outcome.errorCode == .composeFailed)
            #expect(outcome.errorMessage?.contains("compose up failed") == true, "\(outcome.errorMessage ?? "")")
            #expect(!log.lines.contains("pulling images"))
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
        }
    }

    @Test("a new service that fails is stopped while the others roll back", .timeLimit(.minutes(3)), arguments: flavours)
    func newServiceFailsAndIsStopped(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "new-svc") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("v2"), content: "v2")
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let (first, firstLog) = await scenario.deploy(
                scenario.deployment(compose: TestStacks.web(image: scenario.image("v1")), images: ["web": scenario.image("v1")])
            )
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")

            let compose = TestStacks.web(image: scenario.image("v2"), worker: scenario.image("crash"))
            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("v2"), "worker": scenario.image("crash")])
            )
            #expect(outcome.state == .rolledBack, "\(log.text)")
            #expect(outcome.errorMessage?.contains("service worker") == true, "\(outcome.errorMessage ?? "")")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            let running = try await scenario.runningContainers()
            #expect(running.count == 1, "only web runs again")
            let all = try await scenario.docker.containers(project: scenario.project, all: true)
            #expect(all.count == 2, "the new service's container is stopped, not removed")
        }
    }

    @Test("a rollback returns to the variables of the last deploy that succeeded", .timeLimit(.minutes(3)), arguments: flavours)
    func rollbackUsesLastGoodVariables(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "rb-env") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            // The same image either way: only the variable decides whether the service starts.
            let compose = """
                services:
                  web:
                    image: \(scenario.image("v1"))
                    network_mode: host
                    init: true
                    environment:
                      - PORT=${PORT}
                      - MODE=${MODE:-ok}
                    command: ["/bin/sh", "-c", "test \\"$$MODE\\" = ok || { echo bad mode $$MODE; exit 4; }; exec httpd -f -p 127.0.0.1:$$PORT -h /www"]

                """
            let (first, firstLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("v1")], environment: ["MODE": "ok"])
            )
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")

            let (outcome, log) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("v1")], environment: ["MODE": "bad"])
            )
            #expect(outcome.state == .rolledBack, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(outcome.errorMessage?.contains("exited with code 4") == true, "\(outcome.errorMessage ?? "")")
            #expect(log.lines.contains("returning to the compose file and variables of the last deploy that succeeded"))
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            let running = try await scenario.runningContainers()
            #expect(running.count == 1)
            if let container = running.first {
                let environment = try await scenario.docker.lines(["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", container])
                #expect(environment.contains("MODE=ok"), "\(environment)")
            }
        }
    }

    @Test("a rollback restores what the deploy changed, with the last good file, and leaves the rest alone", .timeLimit(.minutes(4)), arguments: flavours)
    func rollbackTouchesOnlyChangedServices(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "rb-svc") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let storePort = try freeLoopbackPort()
            let sidecarPort = try freeLoopbackPort()
            func service(_ name: String, _ image: String, port: String) -> String {
                """
                  \(name):
                    image: \(image)
                    network_mode: host
                    init: true
                    environment:
                      - PORT=\(port)

                """
            }
            let v1 = scenario.image("v1")
            let before = "services:\n" + service("web", v1, port: "${PORT}") + service("store", v1, port: "\(storePort)")
                + service("sidecar", v1, port: "\(sidecarPort)")
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: before, images: ["web": v1]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            let store = try await scenario.docker.containers(project: scenario.project, service: "store")

            // The new file drops the sidecar (`up --remove-orphans` removes it) and breaks web.
            let after = "services:\n" + service("web", scenario.image("crash"), port: "${PORT}") + service("store", v1, port: "\(storePort)")
            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: after, images: ["web": scenario.image("crash")]))
            #expect(outcome.state == .rolledBack, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
            #expect(await waitForBody(port: sidecarPort, expected: "v1") == "v1", "the service the new file dropped runs again")
            #expect(try await scenario.docker.containers(project: scenario.project, service: "store") == store, "store was not recreated")
            let onDisk = try String(contentsOf: scenario.sandbox.stacks.appendingPathComponent(scenario.project).appendingPathComponent("compose.yml"), encoding: .utf8)
            #expect(onDisk == before, "the stack directory holds the last good compose file again")
        }
    }

    @Test("a one-shot service that exits 0 is done; one that fails, or that Docker restarts, is not", .timeLimit(.minutes(4)), arguments: flavours)
    func oneShotServices(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "oneshot") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            func compose(_ script: String, restart: String? = nil) -> String {
                TestStacks.web(image: scenario.image("v1")) + """
                      migrate:
                        image: \(scenario.image("v1"))
                        network_mode: host
                        command: ["/bin/sh", "-c", "\(script)"]

                    """ + (restart.map { "    restart: \"\($0)\"\n" } ?? "")
            }
            let (done, doneLog) = await scenario.deploy(scenario.deployment(compose: compose("echo migrated"), images: ["web": scenario.image("v1")]))
            #expect(done.state == .succeeded, "\(done.errorMessage ?? "")\n\(doneLog.text)")
            #expect(doneLog.lines.contains { $0.contains("migrate") && $0.contains("ran to completion") }, "\(doneLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")

            let (failed, failedLog) = await scenario.deploy(scenario.deployment(compose: compose("echo migration failed; exit 5"), images: ["web": scenario.image("v1")]))
            #expect(failed.state == .rolledBack, "\(failed.errorMessage ?? "")\n\(failedLog.text)")
            #expect(failed.errorMessage?.contains("exited with code 5") == true, "\(failed.errorMessage ?? "")")

            // `restart: always` makes an exit 0 a crash loop, not a finished one-shot.
            let (looping, loopingLog) = await scenario.deploy(scenario.deployment(compose: compose("sleep 0.2", restart: "always"), images: ["web": scenario.image("v1")]))
            #expect(looping.state == .rolledBack, "\(looping.errorMessage ?? "")\n\(loopingLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
        }
    }

    @Test("a service that crashes once and runs on its restart is a good deploy; one that keeps crashing is not", .timeLimit(.minutes(4)), arguments: flavours)
    func restartThatHeals(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "heals") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            func compose(_ script: String, restart: String) -> String {
                TestStacks.web(image: scenario.image("v1")) + """
                      app:
                        image: \(scenario.image("v1"))
                        network_mode: host
                        command: ["/bin/sh", "-c", "\(script)"]
                        restart: "\(restart)"

                    """
            }
            // Like an app whose database is not ready at its first start: it exits 1, then runs.
            // The marker lives in the container's own file system, which a restart keeps.
            let once = "if [ -e /tmp/started ]; then exec sleep 600; fi; touch /tmp/started; echo database not ready; exit 1"
            let (healed, healedLog) = await scenario.deploy(scenario.deployment(compose: compose(once, restart: "unless-stopped"), images: ["web": scenario.image("v1")]))
            #expect(healed.state == .succeeded, "\(healed.errorMessage ?? "")\n\(healedLog.text)")
            #expect(healedLog.lines.contains { $0.contains("app") && $0.contains("restarted by its restart policy (restart 1 of at most 3)") }, "\(healedLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")

            // Three crashes are still within the limit ("restart 3 of at most 3").
            // (`$$`: a literal `$` in a compose file.)
            let thrice = "n=$$(cat /tmp/n 2>/dev/null || echo 0); n=$$((n+1)); echo $$n > /tmp/n; if [ $$n -gt 3 ]; then exec sleep 600; fi; exit 1"
            let (healedThrice, thriceLog) = await scenario.deploy(scenario.deployment(compose: compose(thrice, restart: "unless-stopped"), images: ["web": scenario.image("v1")]))
            #expect(healedThrice.state == .succeeded, "\(healedThrice.errorMessage ?? "")\n\(thriceLog.text)")
            #expect(thriceLog.lines.contains { $0.contains("restart 3 of at most 3") }, "\(thriceLog.text)")

            // A crash loop still fails within seconds, and the deploy is rolled back.
            let (looping, loopingLog) = await scenario.deploy(scenario.deployment(compose: compose("echo broken config; exit 2", restart: "unless-stopped"), images: ["web": scenario.image("v1")]))
            #expect(looping.state == .rolledBack, "\(looping.errorMessage ?? "")\n\(loopingLog.text)")
            #expect(looping.errorMessage?.contains("keeps restarting (exited with code 2") == true, "\(looping.errorMessage ?? "")")
            #expect(loopingLog.lines.contains { $0.contains("broken config") }, "the container's last output is in the log")

            // `on-failure:1` gives up after one restart: the container stays exited, and that fails
            // at once rather than at the timeout.
            let (gaveUp, gaveUpLog) = await scenario.deploy(scenario.deployment(compose: compose("exit 4", restart: "on-failure:1"), images: ["web": scenario.image("v1")]))
            #expect(gaveUp.state == .rolledBack, "\(gaveUp.errorMessage ?? "")\n\(gaveUpLog.text)")
            #expect(gaveUp.errorMessage?.contains("exited with code 4") == true, "\(gaveUp.errorMessage ?? "")")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1")
        }
    }

    @Test("a first deploy that fails ends failed and is not taken down", .timeLimit(.minutes(3)), arguments: flavours)
    func failedFirstDeployIsNotDown(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "first") { scenario in
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let compose = TestStacks.web(image: scenario.image("crash"))
            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("crash")]))
            #expect(outcome.state == .failed, "\(log.text)")
            #expect(outcome.errorCode == .unhealthy)
            #expect(log.lines.contains { $0.contains("nothing to roll back to") })
            #expect(!log.lines.contains { $0.contains(" down") })
            // The failed container is still there to be inspected: the stack was not taken down.
            #expect(try await scenario.docker.containers(project: scenario.project, all: true).count == 1)
        }
    }

    @Test("a private registry needs the job's credentials, which leave nothing behind", .timeLimit(.minutes(3)), arguments: flavours)
    func privateRegistry(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "private") { scenario in
            let engine = scenario.engine
            let image = "\(engine.authRegistry)/\(scenario.project)/web:v1"
            try await scenario.images.build(image, content: "private v1")
            // The pull must really reach the registry: drop the local copy the build left.
            try await scenario.docker.run(["rmi", image])
            let credential = RegistryCredential(registry: engine.authRegistry, username: engine.authUser, password: engine.authPassword)
            let compose = TestStacks.web(image: image)

            let watcher = ScratchWatcher(directory: scenario.sandbox.scratch, expectedKey: engine.authRegistry)
            let (outcome, log) = try await watcher.watch {
                await scenario.deploy(scenario.deployment(compose: compose, images: ["web": image], credentials: [credential]))
            }
            #expect(outcome.state == .succeeded, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(await waitForBody(port: scenario.port, expected: "private v1") == "private v1")
            let seen = watcher.seen
            #expect(seen.directories > 0, "the job never created a DOCKER_CONFIG under the scratch directory")
            #expect(seen.allPrivate, "a job DOCKER_CONFIG was not mode 0700")
            #expect(seen.sawCredentials, "no job config.json held the registry's auth")
            #expect(try FileManager.default.contentsOfDirectory(atPath: scenario.sandbox.scratch.path).isEmpty)

            let (denied, deniedLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": image]))
            #expect(denied.state == .failed, "\(deniedLog.text)")
            #expect(denied.errorCode == .pullFailed)
            let message = (denied.errorMessage ?? "").lowercased()
            #expect(
                message.contains("unauthorized") || message.contains("authentication required")
                    || message.contains("no basic auth credentials"),
                "\(denied.errorMessage ?? "")"
            )
            #expect(try FileManager.default.contentsOfDirectory(atPath: scenario.sandbox.scratch.path).isEmpty)
            #expect(await waitForBody(port: scenario.port, expected: "private v1") == "private v1", "the failed pull left the running service alone")
        }
    }

    @Test("variable values with quotes, $, spaces and newlines arrive intact", .timeLimit(.minutes(3)), arguments: flavours)
    func variablesArriveIntact(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "env") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let tricky = "it's \"double\" and 'single' $HOME ${PORT} $$ `tick` \\back  two spaces\nsecond line\ttab # not a comment "
            let compose = TestStacks.web(
                image: scenario.image("v1"),
                version: "3.8",
                environment: ["TRICKY=${TRICKY}", "AGENT_HOME=${HOME:-not passed}"]
            )
            let (outcome, log) = await scenario.deploy(
                scenario.deployment(
                    compose: compose,
                    images: ["web": scenario.image("v1")],
                    environment: ["TRICKY": tricky, "DOCKER_HOST": "tcp://203.0.113.1:2375", "COMPOSE_PROFILES": "none", "LD_PRELOAD": "/nonexistent.so"]
                )
            )
            #expect(outcome.state == .succeeded, "\(outcome.errorMessage ?? "")\n\(log.text)")
            let container = try #require(try await scenario.runningContainers().first)
            let env = try await scenario.docker.inspect(container).config.env ?? []
            #expect(env.contains("TRICKY=\(tricky)"), "\(env)")
            #expect(env.contains("AGENT_HOME=not passed"), "the agent's own environment leaked: \(env)")
            for name in ["COMPOSE_PROFILES", "DOCKER_HOST", "LD_PRELOAD"] {
                #expect(log.lines.contains { $0.hasPrefix("ignoring stack variable \(name)") }, "\(name)")
            }
        }
    }

    @Test("remove takes containers away and keeps named volumes", .timeLimit(.minutes(3)), arguments: flavours)
    func removeKeepsVolumes(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "remove") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let compose = TestStacks.web(image: scenario.image("v1"), volume: true)
            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(outcome.state == .succeeded, "\(outcome.errorMessage ?? "")\n\(log.text)")
            let stackDirectory = scenario.sandbox.stacks.appendingPathComponent(scenario.project)
            #expect(FileManager.default.fileExists(atPath: stackDirectory.appendingPathComponent("compose.yml").path))

            let removeLog = LogRecorder()
            let removed = await scenario.driver.remove(
                stackId: scenario.project,
                projectName: scenario.project,
                compose: compose,
                environment: ["PORT": "\(scenario.port)"],
                log: removeLog.sink
            )
            #expect(removed.state == .succeeded, "\(removed.errorMessage ?? "")\n\(removeLog.text)")
            #expect(try await scenario.docker.containers(project: scenario.project, all: true).isEmpty)
            #expect(await httpBody(port: scenario.port) == nil)
            let volume = try await scenario.docker.runAllowingFailure(["volume", "inspect", "\(scenario.project)_data"])
            #expect(volume.succeeded, "the named volume was deleted")
            #expect(!FileManager.default.fileExists(atPath: stackDirectory.path))
            let tags = try await scenario.docker.lines(["images", "--format", "{{.Repository}}", "--filter", "reference=wharf-rollback/*"])
            #expect(!tags.contains { $0.contains(scenario.project) }, "rollback tags were left: \(tags)")
        }
    }

    @Test("a compose file that compose rejects is invalid_stack, with compose's reason", .timeLimit(.minutes(2)), arguments: flavours)
    func invalidCompose(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "invalid") { scenario in
            let compose = """
                services:
                  web:
                    image: busybox
                    bogus_key: 1
                """
            let (outcome, _) = await scenario.deploy(scenario.deployment(compose: compose, images: [:]))
            #expect(outcome.state == .failed)
            #expect(outcome.errorCode == .invalidStack)
            #expect(outcome.errorMessage?.contains("bogus_key") == true, "\(outcome.errorMessage ?? "")")

            let (badName, _) = await scenario.deploy(
                StackDeployment(stackId: "Bad Name", projectName: "Bad Name", compose: compose)
            )
            #expect(badName.errorCode == .invalidStack)
        }
    }

    @Test("compose output reaches the log while the job runs", .timeLimit(.minutes(3)), arguments: flavours)
    func logStreams(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "stream") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            let compose = TestStacks.web(image: scenario.image("v1"))
            let clock = ContinuousClock()
            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            let end = clock.now
            #expect(outcome.state == .succeeded, "\(outcome.errorMessage ?? "")\n\(log.text)")
            let lines = log.timedLines
            let upIndex = try #require(lines.firstIndex { $0.1 == "starting services" })
            let waitIndex = try #require(lines.firstIndex { $0.1.hasPrefix("waiting for health") })
            #expect(waitIndex > upIndex + 1, "compose up printed nothing")
            // Compose's output of `up` arrived before the health wait, which lasts at least the settle time.
            let upOutput = lines[upIndex + 1]
            let settle = ComposeCLIEngine.Configuration(stacksDirectory: scenario.sandbox.scratch).settleTime
            #expect(end - upOutput.0 >= settle, "output arrived only at the end")
        }
    }
}

/// Watches the scratch directory during a job: the job-scoped DOCKER_CONFIG directories it sees.
final class ScratchWatcher: Sendable {
    struct Seen: Sendable {
        var directories = 0
        var allPrivate = true
        var sawCredentials = false
    }

    let directory: URL
    let expectedKey: String
    private let state = MutexBox(Seen())

    init(directory: URL, expectedKey: String) {
        self.directory = directory
        self.expectedKey = expectedKey
    }

    var seen: Seen { state.value }

    /// Runs `body` while polling the directory every 20 ms.
    func watch<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        let poller = Task { [self] in
            var names = Set<String>()
            while !Task.isCancelled {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
                for entry in entries {
                    let path = directory.appendingPathComponent(entry).path
                    let attributes = try? FileManager.default.attributesOfItem(atPath: path)
                    let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue
                    let config = try? String(contentsOfFile: path + "/config.json", encoding: .utf8)
                    state.update { seen in
                        if names.insert(entry).inserted { seen.directories += 1 }
                        if let mode, mode & 0o777 != 0o700 { seen.allPrivate = false }
                        if let config, config.contains("\"\(expectedKey)\"") && config.contains("\"auth\"") {
                            seen.sawCredentials = true
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { poller.cancel() }
        return try await body()
    }
}
