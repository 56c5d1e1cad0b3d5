import Foundation

extension StackJob {
    /// Deploys: files, validation, pull, record running images, `up`, health; rollback on failure.
    func deploy(_ deployment: StackDeployment) async throws -> DeployOutcome {
        // What the last successful deploy ran, read before this one replaces compose.yml.
        let lastGood = files.loadLastGood()
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
        let rollback = Rollback(previous: previous, services: services, pinned: pinned, version: version, lastGood: lastGood, timeout: deployment.healthTimeout)

        // From here on containers change: whatever goes wrong, including a query that throws,
        // goes through the rollback.
        let health: HealthResult
        do {
            log.step("starting services")
            let up = try await runCompose(["up", "-d", "--remove-orphans"])
            guard up.succeeded else {
                return await rollBack(after: ContainerEngineError(.composeFailed, failureMessage("compose up", up)), rollback)
            }
            log.step("waiting for health (timeout \(Self.seconds(deployment.healthTimeout)))")
            health = try await waitUntilHealthy(services: nil, timeout: deployment.healthTimeout, existing: previous.existing)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return await rollBack(after: Self.engineError(error), rollback)
        }
        switch health {
        case .healthy(let containers):
            let record = StackFiles.LastGood(
                compose: deployment.compose,
                images: pinned,
                environment: stackEnvironment,
                services: services.sorted()
            )
            do {
                try files.saveLastGood(record)
            } catch {
                // The deploy itself succeeded; only a later rollback loses this deploy's file and variables.
                log.step("could not record this deploy for later rollbacks: \(Self.engineError(error).message)")
            }
            return .succeeded(Self.outcomes(containers: containers, services: services, pinned: pinned))
        case .failed(let failure):
            return await rollBack(after: failure, rollback)
        }
    }

    /// What was running before `up`: per service, the image ID and the running containers' IDs.
    struct Previous: Sendable {
        var images: [String: String] = [:]
        var containers: [String: Set<String>] = [:]
        /// Every container of the project before `up`, running or not: those `up` creates are not in it.
        var existing: Set<String> = []
    }

    /// The image ID each service runs now, each also tagged (``StackFiles/rollbackTag(project:service:)``)
    /// so that a rollback needs no registry and survives the plan's tag moving, and the IDs of its
    /// running containers, so that a rollback touches only the services `up` changed.
    private func recordRunningImages() async throws -> Previous {
        var previous = Previous()
        for container in try await containers(includeStopped: true).sorted(by: { $0.name < $1.name }) {
            previous.existing.insert(container.id)
            guard container.state.running, let service = container.service else { continue }
            previous.containers[service, default: []].insert(container.id)
            if previous.images[service] == nil { previous.images[service] = container.image }
        }
        if previous.images.isEmpty {
            log.step("no running containers: nothing to roll back to if this deploy fails")
        }
        for (service, imageID) in previous.images.sorted(by: { $0.key < $1.key }) {
            let tag = StackFiles.rollbackTag(project: project, service: service)
            try await docker.tag(imageID, tag)
            log.step("  \(service): \(imageID) (kept as \(tag))")
        }
        return previous
    }

    /// What a rollback needs to know of the deploy it undoes.
    struct Rollback: Sendable {
        var previous: Previous
        /// The services of the new compose file.
        var services: Set<String>
        /// The new deploy's pinned images.
        var pinned: [String: String]
        var version: String?
        /// What the last successful deploy ran, when this agent recorded it.
        var lastGood: StackFiles.LastGood?
        var timeout: Duration
    }

    /// Returns the services that ran before and that the failed deploy changed to their recorded
    /// images — with the compose file and variables of the last deploy that succeeded, when
    /// there is a record of it — and stops services that did not run before; never `down`.
    /// Services `up` left alone are not touched. The outcome is `rolled_back` with the original
    /// failure when everything that ran before runs again, else `failed`; a rollback that throws
    /// ends `failed` with both reasons.
    private func rollBack(after failure: ContainerEngineError, _ rollback: Rollback) async -> DeployOutcome {
        log.step("deploy failed: \(failure.code.rawValue): \(failure.message)")
        do {
            return try await rollBackThrowing(after: failure, rollback)
        } catch is CancellationError {
            return .failed(failure.code, "\(failure.message); rollback cancelled")
        } catch {
            let reason = Self.engineError(error).message
            log.step("rollback failed: \(reason)")
            return .failed(failure.code, "\(failure.message); rollback failed: \(reason)")
        }
    }

    private func rollBackThrowing(after failure: ContainerEngineError, _ rollback: Rollback) async throws -> DeployOutcome {
        let previous = rollback.previous
        // The services whose running containers `up` replaced, stopped or removed.
        var runningNow: [String: Set<String>] = [:]
        for container in try await containers(includeStopped: false) where container.state.running && !container.state.restarting {
            if let service = container.service { runningNow[service, default: []].insert(container.id) }
        }
        let changed = Set(previous.containers.keys.filter { runningNow[$0] != previous.containers[$0] })

        let fresh = rollback.services.subtracting(previous.images.keys).sorted()
        if !fresh.isEmpty {
            log.step("stopping services that were not running before: \(fresh.joined(separator: ", "))")
            let stop = try await runCompose(["stop"] + fresh)
            if !stop.succeeded { log.step(failureMessage("compose stop", stop)) }
        }
        guard !previous.images.isEmpty else {
            log.step("nothing to roll back to: no service was running before this deploy")
            return .failed(failure.code, failure.message)
        }

        // The file, images and variables to return to: the last good deploy's, else this one's.
        var job = self
        var images: [String: String]
        let services: Set<String>
        var version = rollback.version
        if let lastGood = rollback.lastGood {
            log.step("returning to the compose file and variables of the last deploy that succeeded")
            try files.writeCompose(lastGood.compose)
            job = with(stackEnvironment: lastGood.environment)
            images = lastGood.images
            services = Set(lastGood.services)
            version = StackFiles.topLevelVersion(of: lastGood.compose)
        } else {
            images = rollback.pinned
            services = rollback.services
        }
        let lost = changed.subtracting(services).sorted()
        for service in lost {
            log.step("service \(service) is no longer in the compose file and cannot be restored")
        }
        let restore = changed.intersection(services).sorted()
        let untouched = previous.containers.keys.filter { !changed.contains($0) }.sorted()
        if !untouched.isEmpty {
            log.step("left as they were (the deploy did not change them): \(untouched.joined(separator: ", "))")
        }
        for service in restore {
            images[service] = StackFiles.rollbackTag(project: project, service: service)
        }
        try files.writeOverride(images: images.filter { services.contains($0.key) }, version: version)

        if !restore.isEmpty {
            log.step("rolling back to previous images")
            log.step("  services: \(restore.joined(separator: ", "))")
            let existing = Set(try await job.containers(includeStopped: true, services: Set(restore)).map(\.id))
            // The rollback tags are local: never pulled (`pull_policy: always`) nor built over (`pull_policy: build`).
            let up = try await job.runCompose(["up", "-d", "--no-deps"] + compose.localImagesOnly + restore)
            guard up.succeeded else {
                return .failed(failure.code, "\(failure.message); rollback failed: \(failureMessage("compose up", up))")
            }
            log.step("waiting for the previous images (timeout \(Self.seconds(rollback.timeout)))")
            if case .failed(let rollbackFailure) = try await job.waitUntilHealthy(services: Set(restore), timeout: rollback.timeout,
                                                                                    existing: existing) {
                return .failed(failure.code, "\(failure.message); rollback failed: \(rollbackFailure.message)")
            }
        }
        guard lost.isEmpty else {
            return .failed(failure.code, "\(failure.message); rollback failed: \(lost.joined(separator: ", ")) cannot be restored")
        }
        log.step("rolled back to previous images")
        return .rolledBack(failure.code, failure.message)
    }

    /// An error as a job error: engine errors as they are, anything else as `compose_failed`.
    static func engineError(_ error: any Error) -> ContainerEngineError {
        (error as? ContainerEngineError) ?? ContainerEngineError(.composeFailed, "\(error)")
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
