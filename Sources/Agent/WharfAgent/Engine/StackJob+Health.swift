import Foundation

extension StackJob {
    /// How waiting for a project's containers ended.
    enum HealthResult: Sendable {
        /// Every container ran (and was healthy, where it has a healthcheck) for the settle time.
        case healthy([ContainerDetails])
        /// `unhealthy` (an unhealthy or exited container, or one restarted too often) or `timeout`.
        case failed(ContainerEngineError)
    }

    /// Waits until every container of the project (or of `services`) is running and, where it has
    /// a healthcheck, healthy — and still is after the settle time.
    ///
    /// An unhealthy container, or one that exited and that Docker will not restart, fails at once
    /// (`unhealthy`). One that Docker restarts by its policy is waited for, up to
    /// `configuration.maxRestarts` restarts (then `unhealthy`): an app that crashed once because its
    /// database was not ready yet, and runs on its restart, is a good deploy. Containers still
    /// starting or restarting when `timeout` passes fail with `timeout`. A container that exited
    /// with code 0 and that Docker will not restart (restart policy `no` or `on-failure`) is a
    /// one-shot service that finished — a migration, a seed — and counts as done.
    ///
    /// `existing`: the containers there were before `up`. Their restarts are counted from the
    /// first look; any other container was made by `up`, and every restart it has had counts
    /// (Docker may restart one before the first look: its first back-off is 100 ms).
    func waitUntilHealthy(services: Set<String>?, timeout: Duration, existing: Set<String>) async throws -> HealthResult {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var readySince: ContinuousClock.Instant?
        var restartBaseline: [String: Int] = [:]
        var restartsSeen: [String: Int] = [:]
        var completed: Set<String> = []
        while true {
            let containers = try await containers(includeStopped: true, services: services)
                .sorted { $0.name < $1.name }
            var waitingFor: [String] = []
            for container in containers {
                let service = container.service ?? container.displayName
                let baseline = restartBaseline[container.id] ?? (existing.contains(container.id) ? container.restartCount : 0)
                restartBaseline[container.id] = baseline
                let willRestart = container.willRestart
                // Docker counts a restart when it marks the container `Restarting`; one that has
                // exited and is not marked yet is about to be, and counts already.
                let restarts = container.restartCount - baseline + (willRestart && !container.state.restarting ? 1 : 0)
                if restarts > configuration.maxRestarts {
                    await logContainerOutput(container)
                    return .failed(
                        ContainerEngineError(
                            .unhealthy,
                            "service \(service): container \(container.displayName) keeps restarting (exited with code \(container.state.exitCode); \(restarts) restarts)"
                        )
                    )
                }
                if restarts > restartsSeen[container.id] ?? 0 {
                    restartsSeen[container.id] = restarts
                    log.step(
                        "service \(service): container \(container.displayName) exited with code \(container.state.exitCode) and is restarted by its restart policy (restart \(restarts) of at most \(configuration.maxRestarts))"
                    )
                    // Between two polls it may have restarted and be running again: it has to run
                    // for the whole settle time from now on.
                    waitingFor.append("\(service) (restarting)")
                    continue
                }
                if willRestart {
                    waitingFor.append("\(service) (restarting)")
                    continue
                }
                if !container.state.running {
                    if container.state.status == "created" {
                        waitingFor.append("\(service) (not started)")
                        continue
                    }
                    if container.ranToCompletion {
                        // A one-shot service (a migration, a seed) that finished: done, not failed.
                        if completed.insert(container.id).inserted {
                            log.step("service \(service): container \(container.displayName) ran to completion (exit code 0)")
                        }
                        continue
                    }
                    await logContainerOutput(container)
                    return .failed(
                        ContainerEngineError(
                            .unhealthy,
                            "service \(service): container \(container.displayName) exited with code \(container.state.exitCode)"
                        )
                    )
                }
                guard let health = container.state.health else { continue }
                switch health.status {
                case "healthy":
                    continue
                case "unhealthy":
                    var message = "service \(service): container \(container.displayName) is unhealthy"
                    if let probe = health.log?.last {
                        let output = probe.output.trimmingWhitespace()
                        message += output.isEmpty
                            ? " (healthcheck exited with code \(probe.exitCode))"
                            : " (healthcheck exited with code \(probe.exitCode): \(output.prefix(500)))"
                    }
                    return .failed(ContainerEngineError(.unhealthy, message))
                default:
                    waitingFor.append("\(service) (health: \(health.status))")
                }
            }

            let now = clock.now
            if waitingFor.isEmpty {
                if let readySince {
                    if now - readySince >= configuration.settleTime { return .healthy(containers) }
                } else {
                    readySince = now
                }
            } else {
                readySince = nil
                if now >= deadline {
                    return .failed(
                        ContainerEngineError(
                            .timeout,
                            "not healthy within \(Self.seconds(timeout)): \(waitingFor.joined(separator: ", "))"
                        )
                    )
                }
            }
            try await Task.sleep(for: configuration.pollInterval)
        }
    }

    /// Copies a failed container's last output lines into the job log: usually the reason it failed.
    private func logContainerOutput(_ container: ContainerDetails) async {
        guard let result = try? await docker.logs(container.id, tail: 20), !result.isEmpty else { return }
        log.step("last output of \(container.displayName):")
        for line in result { log.output("  \(line)") }
    }
}
