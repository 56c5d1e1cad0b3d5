import Foundation
import Testing

@testable import WharfAgent

/// Rollbacks a deploy can reach only by a detour: a service whose `pull_policy` would make compose
/// fetch or build its image.
extension ComposeCLIEngineTests {
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

    /// Expects the stack to run one container, of `imageID`.
    private static func expectRunsOnly(_ imageID: String, _ scenario: Scenario) async throws {
        let running = try await scenario.runningContainers()
        #expect(running.count == 1)
        for container in running {
            #expect(try await scenario.docker.inspect(container).image == imageID)
        }
    }
}
