import Foundation

extension StackJob {
    /// Deploys: files, validation, pull, record running images, `up`, health; rollback on failure.
    ///
    /// The record of what ran before (``StackFiles/InFlight``) is deleted once the deploy has an
    /// outcome that leaves the stack settled: deployed, rolled back, or never changed. A deploy cut
    /// short (cancelled), ended by an error thrown before its `up` (the engine unreachable, a file
    /// it cannot write), or whose rollback failed, leaves it: the stack may be half-way from an
    /// earlier run, and the next run of the job, or the stack's next job, returns to it on failure
    /// rather than to the broken state it finds.
    func deploy(_ deployment: StackDeployment) async throws -> DeployOutcome {
        let ended = try await deployKeepingRecord(deployment)
        // Cancelled, the outcome is not reported: the job runs again from the start and needs the record.
        if !Task.isCancelled {
            if ended.settled {
                do {
                    try files.removeInFlight()
                } catch {
                    // The next deploy would return on failure to what ran before this one, rather than to what runs now.
                    log.step("could not delete the record of what ran before this deploy: \(Self.engineError(error).message)")
                }
            } else {
                log.step("the stack is neither deployed nor rolled back: on failure, its next deploy returns to what ran before this one")
            }
        }
        return ended.outcome
    }

    /// A deploy's outcome, and whether it left the stack settled: running what it deployed, what
    /// ran before it, or what it found (nothing changed). A failed rollback is not settled.
    private struct Ended {
        var outcome: DeployOutcome
        var settled: Bool
    }

    private func deployKeepingRecord(_ deployment: StackDeployment) async throws -> Ended {
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
        try await engineAnswers()

        // The running images are recorded while the pull runs: both only read, and neither waits for the other.
        log.step("recording running images")
        async let recorded = rememberPrevious(jobId: deployment.jobId)
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
                let failure = ContainerEngineError(.pullFailed, failureMessage("compose pull", pull))
                // Nothing has changed yet: the running containers are untouched — unless an earlier run
                // of this job (or an unfinished earlier job) changed them before it was cut short.
                guard let remembered = try? await recorded, remembered.fromRecord,
                      let changed = try? await changes(since: remembered.previous), !changed.isEmpty
                else { return Ended(outcome: .failed(failure.code, failure.message), settled: true) }
                log.step("services an unfinished earlier run changed: \(changed.sorted().joined(separator: ", "))")
                let rollback = Rollback(previous: remembered.previous, services: services, pinned: pinned, version: version, lastGood: lastGood, timeout: deployment.healthTimeout)
                return try await rollBack(after: failure, rollback)
            }
        }
        let (previous, _) = try await recorded
        let rollback = Rollback(previous: previous, services: services, pinned: pinned, version: version, lastGood: lastGood, timeout: deployment.healthTimeout)

        // From here on containers change: whatever goes wrong, including a query that throws,
        // goes through the rollback.
        let health: HealthResult
        do {
            log.step("starting services")
            let up = try await runCompose(["up", "-d", "--remove-orphans"])
            guard up.succeeded else {
                return try await rollBack(after: ContainerEngineError(.composeFailed, failureMessage("compose up", up)), rollback)
            }
            log.step("waiting for health (timeout \(Self.seconds(deployment.healthTimeout)))")
            health = try await waitUntilHealthy(services: nil, timeout: deployment.healthTimeout, existing: previous.existing)
        } catch is CancellationError {
            // Cut short by the agent's stop: the job runs again from the start, with the record.
            throw CancellationError()
        } catch {
            return try await rollBack(after: Self.engineError(error), rollback)
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
            return Ended(outcome: .succeeded(Self.outcomes(containers: containers, services: services, pinned: pinned)), settled: true)
        case .failed(let failure):
            return try await rollBack(after: failure, rollback)
        }
    }

    /// What was running before `up`: per service, the image ID and the running containers' IDs.
    struct Previous: Sendable {
        var images: [String: String] = [:]
        var containers: [String: Set<String>] = [:]
        /// Every container of the project before `up`, running or not: those `up` creates are not in it.
        var existing: Set<String> = []
    }

    /// What this deploy returns to on failure, and whether it came from the stack's record of a
    /// deploy that did not end (``StackFiles/InFlight``) rather than from what runs now.
    ///
    /// Without a record: the image ID each service runs now, each also tagged
    /// (``StackFiles/rollbackTag(project:service:)``) so that a rollback needs no registry and
    /// survives the plan's tag moving, and the IDs of its running containers, so that a rollback
    /// touches only the services `up` changed; then the record is written, before `up` can change
    /// anything.
    ///
    /// With a record of this job, this is a run again after a stop or crash cut the job short: what
    /// runs now may be what the first run's `up` made, so the first run's record is used as it is.
    /// A record of another job is of one that never ended (dropped from the journal, or ended by an
    /// error it could not roll back from): its `up` may have changed the stack as well, and the
    /// stack's last known state, matching ``StackFiles/LastGood``, is what ran before it; this job
    /// takes the record over. Either way the rollback tags are set again from the recorded image IDs.
    private func rememberPrevious(jobId: String?) async throws -> (previous: Previous, fromRecord: Bool) {
        let all = try await containers(includeStopped: true).sorted(by: { $0.name < $1.name })
        var record = files.loadInFlight()
        if let found = record {
            if let jobId, found.jobId == jobId {
                log.step("this job was cut short before it ended: on failure it returns to what ran before its first run")
            } else {
                log.step("an earlier deploy of this stack\(found.jobId.map { " (job \($0))" } ?? "") did not end, or could not roll back: on failure this one returns to what ran before it")
            }
            var previous = Previous(images: found.images, containers: found.containers.mapValues { Set($0) })
            previous.existing = Set(all.map(\.id))
            do {
                try await tagRollbackImages(previous.images)
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as ContainerEngineError where error.code == .engineUnreachable {
                throw error
            } catch {
                // An image of the record was deleted by hand: rather than fail every deploy of the
                // stack from now on, this one remembers what runs now, as if there were no record.
                log.step("the recorded images cannot be kept for a rollback (\(Self.engineError(error).message)): recording what runs now instead")
                record = nil
            }
            if record != nil {
                if found.jobId != jobId {
                    try files.saveInFlight(StackFiles.InFlight(jobId: jobId, images: found.images, containers: found.containers))
                }
                return (previous, true)
            }
        }
        var previous = Previous()
        previous.existing = Set(all.map(\.id))
        for container in all {
            guard container.state.running, let service = container.service else { continue }
            previous.containers[service, default: []].insert(container.id)
            if previous.images[service] == nil { previous.images[service] = container.image }
        }
        if previous.images.isEmpty {
            log.step("no running containers: nothing to roll back to if this deploy fails")
        }
        try await tagRollbackImages(previous.images)
        // Written after the tags, so that a record always has its tags; before `up`, so that what
        // `up` makes is never taken for what ran before.
        try files.saveInFlight(StackFiles.InFlight(
            jobId: jobId,
            images: previous.images,
            containers: previous.containers.mapValues { $0.sorted() }
        ))
        return (previous, false)
    }

    /// Tags each service's image ID with its rollback tag, so that a rollback needs no registry and
    /// survives the plan's tag moving.
    private func tagRollbackImages(_ images: [String: String]) async throws {
        for (service, imageID) in images.sorted(by: { $0.key < $1.key }) {
            let tag = StackFiles.rollbackTag(project: project, service: service)
            try await docker.tag(imageID, tag)
            log.step("  \(service): \(imageID) (kept as \(tag))")
        }
    }

    /// Per service, the IDs of the containers that run now (restarting ones do not count).
    private func runningContainersByService() async throws -> [String: Set<String>] {
        var running: [String: Set<String>] = [:]
        for container in try await containers(includeStopped: false) where container.state.running && !container.state.restarting {
            if let service = container.service { running[service, default: []].insert(container.id) }
        }
        return running
    }

    /// The services that ran before and whose running containers are no longer the recorded ones
    /// (`up` replaced, stopped or removed them).
    private static func changedServices(_ previous: Previous, runningNow: [String: Set<String>]) -> Set<String> {
        Set(previous.containers.keys.filter { runningNow[$0] != previous.containers[$0] })
    }

    /// What an `up` since `previous` was recorded changed: the services that ran before and no
    /// longer run the same containers, and those that run now but did not before.
    private func changes(since previous: Previous) async throws -> Set<String> {
        let runningNow = try await runningContainersByService()
        return Self.changedServices(previous, runningNow: runningNow)
            .union(Set(runningNow.keys).subtracting(previous.images.keys))
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
    ///
    /// Only a cancellation (the agent's stop cut the job short) is thrown: the job then has no
    /// outcome and runs again from the start at the next start, rolling back again if it fails.
    private func rollBack(after failure: ContainerEngineError, _ rollback: Rollback) async throws -> Ended {
        // A cancelled job's children are torn down as they start (a failure of a command torn down
        // by the stop lands here too): what failed is not the deploy, and no rollback could run.
        try Task.checkCancellation()
        log.step("deploy failed: \(failure.code.rawValue): \(failure.message)")
        do {
            return try await rollBackThrowing(after: failure, rollback)
        } catch {
            if Task.isCancelled {
                log.step("rollback cut short by the agent's stop: the job runs again at its next start")
                throw CancellationError()
            }
            let reason = Self.engineError(error).message
            log.step("rollback failed: \(reason)")
            return Ended(outcome: .failed(failure.code, "\(failure.message); rollback failed: \(reason)"), settled: false)
        }
    }

    private func rollBackThrowing(after failure: ContainerEngineError, _ rollback: Rollback) async throws -> Ended {
        let previous = rollback.previous
        // The services whose running containers `up` replaced, stopped or removed.
        let changed = Self.changedServices(previous, runningNow: try await runningContainersByService())

        let fresh = rollback.services.subtracting(previous.images.keys).sorted()
        if !fresh.isEmpty {
            log.step("stopping services that were not running before: \(fresh.joined(separator: ", "))")
            let stop = try await runCompose(["stop"] + fresh)
            if !stop.succeeded { log.step(failureMessage("compose stop", stop)) }
        }
        guard !previous.images.isEmpty else {
            log.step("nothing to roll back to: no service was running before this deploy")
            return Ended(outcome: .failed(failure.code, failure.message), settled: true)
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
            // Once started, this `up` is not torn down by the agent's stop: it takes seconds, and cut
            // halfway it could leave a service's container removed until the job runs again.
            let arguments = ["up", "-d", "--no-deps"] + compose.localImagesOnly + restore
            let up = try await Task { [job] in try await job.runCompose(arguments) }.value
            try Task.checkCancellation()
            guard up.succeeded else {
                log.step("rollback failed: \(failureMessage("compose up", up))")
                return Ended(outcome: .failed(failure.code, "\(failure.message); rollback failed: \(failureMessage("compose up", up))"), settled: false)
            }
            log.step("waiting for the previous images (timeout \(Self.seconds(rollback.timeout)))")
            if case .failed(let rollbackFailure) = try await job.waitUntilHealthy(services: Set(restore), timeout: rollback.timeout,
                                                                                    existing: existing) {
                log.step("rollback failed: \(rollbackFailure.message)")
                return Ended(outcome: .failed(failure.code, "\(failure.message); rollback failed: \(rollbackFailure.message)"), settled: false)
            }
        }
        // What could be restored was: settled, or every later deploy would try to restore the rest again.
        guard lost.isEmpty else {
            return Ended(outcome: .failed(failure.code, "\(failure.message); rollback failed: \(lost.joined(separator: ", ")) cannot be restored"),
                         settled: true)
        }
        log.step("rolled back to previous images")
        return Ended(outcome: .rolledBack(failure.code, failure.message), settled: true)
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
