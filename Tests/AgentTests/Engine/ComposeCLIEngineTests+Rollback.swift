import Foundation
import Testing

@testable import WharfAgent

/// Rollbacks a deploy can reach only by a detour: a run cut short by the agent's stop (or a crash)
/// and run again, and a service whose `pull_policy` would make compose fetch or build its image
/// (`always`, `build`).
extension ComposeCLIEngineTests {
    @Test("a deploy cut short during its health wait rolls back to the old image when the job runs again", .timeLimit(.minutes(4)), arguments: flavours)
    func cutShortDeployRunAgainRollsBack(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "rerun") { scenario in
            let (compose, v1ImageID) = try await Self.deployV1ThenBuildNeverHealthyV2(scenario)
            // The job stays in the journal, to run again from the start at the next start.
            let job = await Self.cutShortDeployOfV2(compose, healthTimeout: .seconds(8), scenario)

            let (rerun, rerunLog) = await scenario.deploy(job)
            #expect(rerun.state == .rolledBack, "\(rerun.errorMessage ?? "")\n\(rerunLog.text)")
            #expect(rerun.errorCode == .timeout)
            #expect(rerunLog.lines.contains { $0.hasPrefix("this job was cut short before it ended") }, "\(rerunLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(rerunLog.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)
            let tagged = try await scenario.docker.run(
                ["image", "inspect", "--format", "{{.Id}}", StackFiles.rollbackTag(project: scenario.project, service: "web")]
            )
            #expect(tagged.trimmingWhitespace() == v1ImageID, "the rollback tag still names the old image")
            #expect(!FileManager.default.fileExists(atPath: scenario.stackDirectory.appendingPathComponent(StackFiles.inFlightFileName).path),
                    "the job ended: its record of what ran before is gone")
        }
    }

    @Test("after a deploy that never ended, the next job returns to what ran before it", .timeLimit(.minutes(4)), arguments: flavours)
    func nextJobReturnsToWhatRanBeforeAnUnfinishedOne(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "abandon") { scenario in
            let (compose, v1ImageID) = try await Self.deployV1ThenBuildNeverHealthyV2(scenario)
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)

            // Cut short, and then never run again (dropped from the journal, say by a new enrolment).
            _ = await Self.cutShortDeployOfV2(compose, healthTimeout: .seconds(60), scenario)

            // v2 never proved healthy: a failed next deploy returns to v1, not to v2.
            let (next, nextLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("crash")], jobId: "job_crash")
            )
            #expect(next.state == .rolledBack, "\(next.errorMessage ?? "")\n\(nextLog.text)")
            #expect(nextLog.lines.contains { $0.hasPrefix("an earlier deploy of this stack (job job_v2) did not end, or could not roll back") }, "\(nextLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(nextLog.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)
        }
    }

    @Test("a failed pull after a deploy that never ended rolls back what that deploy changed", .timeLimit(.minutes(4)), arguments: flavours)
    func failedPullAfterAnUnfinishedDeployRollsBack(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "pull-after") { scenario in
            let (compose, v1ImageID) = try await Self.deployV1ThenBuildNeverHealthyV2(scenario)
            _ = await Self.cutShortDeployOfV2(compose, healthTimeout: .seconds(60), scenario)

            // Nothing this job does changes a container, but the unfinished one left v2 running.
            let (next, nextLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("no-such-tag")], jobId: "job_missing")
            )
            #expect(next.state == .rolledBack, "\(next.errorMessage ?? "")\n\(nextLog.text)")
            #expect(next.errorCode == .pullFailed)
            #expect(!nextLog.lines.contains("starting services"))
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(nextLog.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)

            // With nothing left unfinished, a failed pull touches nothing again.
            let (again, againLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("no-such-tag")], jobId: "job_missing_again")
            )
            #expect(again.state == .failed, "\(again.errorMessage ?? "")\n\(againLog.text)")
            #expect(again.errorCode == .pullFailed)
            try await Self.expectRunsOnly(v1ImageID, scenario)
        }
    }

    @Test("after a deploy whose rollback failed, the next job returns to what ran before it", .timeLimit(.minutes(4)), arguments: flavours)
    func nextJobAfterAFailedRollbackReturnsToWhatRanBefore(flavour: ComposeFlavour) async throws {
        try await Scenario.run(flavour, "rb-failed") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let compose = TestStacks.web(image: scenario.image("v1"))
            let (first, firstLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("v1")], jobId: "job_v1"))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            let v1ImageID = try #require(first.services.first?.imageId)

            // The crashing image fails; once its `up` has stopped v1, another process takes v1's port,
            // so v1's httpd cannot bind it again and the rollback fails too.
            let port = scenario.port
            let (failed, failedLog, blocker) = try await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("crash")], healthTimeout: .seconds(15), jobId: "job_crash"),
                when: { $0.hasPrefix("waiting for health") }, do: { try occupyLoopbackPort(port) })
            let fd = try #require(blocker, "\(failedLog.text)")
            close(fd)
            #expect(failed.state == .failed, "\(failed.errorMessage ?? "")\n\(failedLog.text)")
            #expect(failed.errorMessage?.contains("rollback failed") == true, "\(failed.errorMessage ?? "")\n\(failedLog.text)")
            #expect(FileManager.default.fileExists(atPath: scenario.stackDirectory.appendingPathComponent(StackFiles.inFlightFileName).path),
                    "the stack is neither deployed nor rolled back: the record of what ran before stays")

            // With the port free again, the next failed deploy returns to v1: not to the state the
            // failed rollback left (v1's container exited), which would leave nothing to return to.
            let (next, nextLog) = await scenario.deploy(
                scenario.deployment(compose: compose, images: ["web": scenario.image("crash")], jobId: "job_crash_again"))
            #expect(next.state == .rolledBack, "\(next.errorMessage ?? "")\n\(nextLog.text)")
            #expect(nextLog.lines.contains { $0.hasPrefix("an earlier deploy of this stack (job job_crash) did not end, or could not roll back") },
                    "\(nextLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(nextLog.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)
            #expect(!FileManager.default.fileExists(atPath: scenario.stackDirectory.appendingPathComponent(StackFiles.inFlightFileName).path),
                    "rolled back: the record is gone")
        }
    }

    @Test("a service with pull_policy: always rolls back to its local rollback tag", .timeLimit(.minutes(3)), arguments: flavours)
    func pullPolicyAlwaysRollsBack(flavour: ComposeFlavour) async throws {
        // Compose v1 (1.29.2) reads pull_policy but its `up` never pulls an image that is present:
        // its case passes without the fix too, and checks that v1 gets no `--pull` (it has none).
        try await Scenario.run(flavour, "pull-always") { scenario in
            try await scenario.images.build(scenario.image("v1"), content: "v1")
            try await scenario.images.build(scenario.image("crash"), content: "crash", behaviour: .crash)
            let compose = TestStacks.web(image: scenario.image("v1"), pullPolicy: "always")
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("v1")]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            let v1ImageID = try #require(first.services.first?.imageId)

            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": scenario.image("crash")]))
            #expect(outcome.state == .rolledBack, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(outcome.errorCode == .unhealthy)
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(log.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)
        }
    }

    @Test("a service with pull_policy: build rolls back to its recorded image, not a rebuild", .timeLimit(.minutes(3)),
          arguments: [ComposeFlavour.plugin])
    func pullPolicyBuildRollsBack(flavour: ComposeFlavour) async throws {
        // Compose v2 builds a `pull_policy: build` service at every `up`. Without the rollback's
        // `--no-build --pull never` (either one is enough with v2.40.3), its `up` builds the broken
        // context again as the rollback tag: the job fails and no container of the stack runs (checked).
        // Compose v1 (1.29.2) builds such a service only when its image is missing, so its `up`
        // runs a present image as it is and a rebuilt context never reaches it: no case here.
        try await Scenario.run(flavour, "pull-build") { scenario in
            let base = scenario.image("base")
            try await scenario.images.build(base, content: "base", push: false)
            let context = scenario.sandbox.scratch.appendingPathComponent("build-context")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            // COPY and CMD only: a RUN step would need a container network, and the test engine has none.
            func writeContext(content: String, command: String?) throws {
                var dockerfile = "FROM \(base)\nCOPY index.html /www/index.html\n"
                if let command { dockerfile += command + "\n" }
                try Data(dockerfile.utf8).write(to: context.appendingPathComponent("Dockerfile"))
                try Data(content.utf8).write(to: context.appendingPathComponent("index.html"))
            }
            let built = scenario.image("built")
            let compose = TestStacks.web(image: built, pullPolicy: "build", build: context.path)

            try writeContext(content: "v1", command: nil)
            let (first, firstLog) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": built]))
            try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(firstLog.text)")
            let v1ImageID = try #require(first.services.first?.imageId)

            // The same stack again, its build context now an image that exits at once.
            try writeContext(content: "v2", command: TestImages.crashCommand)
            let (outcome, log) = await scenario.deploy(scenario.deployment(compose: compose, images: ["web": built]))
            #expect(outcome.state == .rolledBack, "\(outcome.errorMessage ?? "")\n\(log.text)")
            #expect(outcome.errorCode == .unhealthy)
            #expect(await waitForBody(port: scenario.port, expected: "v1") == "v1", "\(log.text)")
            try await Self.expectRunsOnly(v1ImageID, scenario)
        }
    }

    /// Deploys v1 (which serves "v1" and is healthy) and builds v2, which serves "v2" but stays
    /// `starting` for its healthcheck's 120 s start period: never healthy within a test's timeout.
    /// Returns the compose file and v1's image ID.
    private static func deployV1ThenBuildNeverHealthyV2(_ scenario: Scenario) async throws -> (String, String) {
        try await scenario.images.build(scenario.image("v1"), content: "v1")
        try await scenario.images.build(scenario.image("v2"), content: "v2", behaviour: .webWithoutHealth)
        let compose = TestStacks.web(image: scenario.image("v1"), probe: .http(startPeriod: "120s"))
        let (first, firstLog) = await scenario.deploy(
            scenario.deployment(compose: compose, images: ["web": scenario.image("v1")], jobId: "job_v1")
        )
        try #require(first.state == .succeeded, "\(first.errorMessage ?? "")\n\(firstLog.text)")
        return (compose, try #require(first.services.first?.imageId))
    }

    /// Deploys v2 as job `job_v2` and cuts it short, as the agent's stop does, while it waits for
    /// v2's health: no rollback runs, and v2 is left running. Returns the job, to run it again.
    private static func cutShortDeployOfV2(_ compose: String, healthTimeout: Duration, _ scenario: Scenario) async -> StackDeployment {
        let job = scenario.deployment(compose: compose, images: ["web": scenario.image("v2")], healthTimeout: healthTimeout, jobId: "job_v2")
        let (cut, cutLog) = await scenario.deploy(job, cutWhen: { $0.hasPrefix("waiting for health") })
        #expect(cut.errorMessage == "the job was cancelled", "\(cut.errorMessage ?? "")\n\(cutLog.text)")
        #expect(await waitForBody(port: scenario.port, expected: "v2") == "v2", "the run cut short left v2 running")
        return job
    }

    /// Expects the stack to run one container, of `imageID`.
    private static func expectRunsOnly(_ imageID: String, _ scenario: Scenario) async throws {
        let running = try await scenario.runningContainers()
        #expect(running.count == 1)
        for container in running {
            #expect(try await scenario.docker.inspect(container).image == imageID)
        }
    }
}
