import Foundation

extension StackJob {
    /// Deploys: files, validation, pull, record running images, `up`, health; rollback on failure.
    func deploy(_ deployment: StackDeployment) async throws -> DeployOutcome {
        try files.writeCompose(deployment.compose)
        let services = try await services()
        let version = StackFiles.topLevelVersion(of: deployment.compose)
        var pinned: [String: String] = [:]
        for (service, image) in deployment.images {
            if services.contains(service) {
                pinned[service] = image
            } else {
                log.step("the plan names service \"\(service)\", which the compose file does not define: ignored")
            }
        }
        // `services()` validated compose.yml (`config --services` fails wherever `config -q` does, on both
        // compose flavours); the override is ours, made of the plan's images, so it is not validated again:
        // one compose call fewer (60–100 ms with v2, about 1 s with v1).
        try files.writeOverride(images: pinned, version: version)

        // The running images are recorded while the pull runs: both only read, and neither waits for the other.
        log.step("recording running images")
        async let recorded = recordRunningImages()
        if deployment.pull {
            log.step("pulling images")
            let pull: CommandResult
            do {
                pull = try await runCompose(["pull"])
            } catch {
                _ = try? await recorded
                throw error
            }
            guard pull.succeeded else {
                _ = try? await recorded
                // Nothing has changed yet: the running containers are untouched.
                return .failed(.pullFailed, failureMessage("compose pull", pull))
            }
        }
        let previous = try await recorded

        log.step("starting services")
        let up = try await runCompose(["up", "-d", "--remove-orphans"])
        guard up.succeeded else {
            let failure = ContainerEngineError(.composeFailed, failureMessage("compose up", up))
            return try await rollBack(after: failure, previous: previous, services: services, pinned: pinned, version: version, timeout: deployment.healthTimeout)
        }

        log.step("waiting for health (timeout \(Self.seconds(deployment.healthTimeout)))")
        switch try await waitUntilHealthy(services: nil, timeout: deployment.healthTimeout) {
        case .healthy(let containers):
            return .succeeded(Self.outcomes(containers: containers, services: services, pinned: pinned))
        case .failed(let failure):
            return try await rollBack(after: failure, previous: previous, services: services, pinned: pinned, version: version, timeout: deployment.healthTimeout)
        }
    }

    /// The image ID each service runs now, each also tagged `wharf-rollback/<project>-<service>:previous`
    /// so that a rollback needs no registry and survives the plan's tag moving.
    private func recordRunningImages() async throws -> [String: String] {
        var images: [String: String] = [:]
        for container in try await containers(includeStopped: false).sorted(by: { $0.name < $1.name }) {
            guard container.state.running, let service = container.service, images[service] == nil else { continue }
            images[service] = container.image
        }
        if images.isEmpty {
            log.step("no running containers: nothing to roll back to if this deploy fails")
        }
        for (service, imageID) in images.sorted(by: { $0.key < $1.key }) {
            let tag = StackFiles.rollbackTag(project: project, service: service)
            try await docker.tag(imageID, tag)
            log.step("  \(service): \(imageID) (kept as \(tag))")
        }
        return images
    }

    /// Returns the services that ran before to their recorded images, and stops services that did
    /// not run before; never `down`. The outcome is `rolled_back` with the original failure when the
    /// previous images run again, else `failed`.
    private func rollBack(
        after failure: ContainerEngineError,
        previous: [String: String],
        services: Set<String>,
        pinned: [String: String],
        version: String?,
        timeout: Duration
    ) async throws -> DeployOutcome {
        log.step("deploy failed: \(failure.code.rawValue): \(failure.message)")
        let restorable = previous.filter { services.contains($0.key) }
        for service in previous.keys.sorted() where !services.contains(service) {
            log.step("service \(service) is no longer in the compose file and cannot be restored")
        }
        let fresh = services.subtracting(restorable.keys).sorted()
        if !fresh.isEmpty {
            log.step("stopping services that were not running before: \(fresh.joined(separator: ", "))")
            let stop = try await runCompose(["stop"] + fresh)
            if !stop.succeeded { log.step(failureMessage("compose stop", stop)) }
        }
        guard !restorable.isEmpty else {
            log.step("nothing to roll back to: no service was running before this deploy")
            return .failed(failure.code, failure.message)
        }

        log.step("rolling back to previous images")
        var images = pinned
        for service in restorable.keys {
            images[service] = StackFiles.rollbackTag(project: project, service: service)
        }
        try files.writeOverride(images: images, version: version)
        let up = try await runCompose(["up", "-d", "--no-deps", "--remove-orphans"] + restorable.keys.sorted())
        guard up.succeeded else {
            return .failed(failure.code, "\(failure.message); rollback failed: \(failureMessage("compose up", up))")
        }
        log.step("waiting for the previous images (timeout \(Self.seconds(timeout)))")
        switch try await waitUntilHealthy(services: Set(restorable.keys), timeout: timeout) {
        case .healthy:
            log.step("rolled back to previous images")
            return .rolledBack(failure.code, failure.message)
        case .failed(let rollbackFailure):
            return .failed(failure.code, "\(failure.message); rollback failed: \(rollbackFailure.message)")
        }
    }

    /// Per service: the image it runs (the plan's, else the container's), the image ID, the container count.
    static func outcomes(containers: [ContainerDetails], services: Set<String>, pinned: [String: String]) -> [ServiceOutcome] {
        let byService = Dictionary(grouping: containers.filter(\.state.running), by: { $0.service ?? "" })
        return services.sorted().map { service in
            let running = (byService[service] ?? []).sorted { $0.name < $1.name }
            return ServiceOutcome(
                name: service,
                image: pinned[service] ?? running.first?.config.image ?? "",
                imageId: running.first?.image ?? "",
                containers: running.count
            )
        }
    }

    /// "60s", "1.5s" — for log lines.
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds)s" }
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return "\((value * 10).rounded() / 10)s"
    }
}
