import Foundation
import Synchronization

/// An engine that runs nothing: every job succeeds after `delay`, reporting the planned images.
///
/// It backs `wharf-agent --simulate`, the fleet simulator for benchmarks, and the link tests: it
/// measures the server's whole path without Docker. With `journal` set, it appends one line per
/// run, `<kind> <stackId> <projectName> <K=V,…>`, so a test can count how often each job really ran.
public final class SimulatedEngine: ContainerEngine {
    public let delay: Duration
    public let journal: URL?
    private let lock = Mutex(())

    /// Makes a simulator.
    public init(delay: Duration = .zero, journal: URL? = nil) {
        self.delay = delay
        self.journal = journal
    }

    public func info() async throws -> EngineInfo {
        EngineInfo(dockerVersion: "simulated", composeFlavour: .plugin, composeVersion: "simulated")
    }

    public func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
        log("simulated deploy of \(deployment.projectName)")
        if delay > .zero { try? await Task.sleep(for: delay) }
        record("deploy \(deployment.stackId) \(deployment.projectName) " + deployment.environment.keys.sorted().map { "\($0)=\(deployment.environment[$0]!)" }.joined(separator: ","))
        let services = deployment.images.keys.sorted().map {
            ServiceOutcome(name: $0, image: deployment.images[$0]!, imageId: "sha256:simulated", containers: 1)
        }
        return DeployOutcome(state: .succeeded, services: services)
    }

    public func remove(stackId: String, projectName: String, compose: String, environment: [String: String],
                       log: @escaping @Sendable (String) -> Void) async -> DeployOutcome {
        if delay > .zero { try? await Task.sleep(for: delay) }
        record("remove \(stackId) \(projectName)")
        return DeployOutcome(state: .succeeded)
    }

    private func record(_ line: String) {
        guard let journal else { return }
        lock.withLock { _ in
            let data = Data((line + "\n").utf8)
            if let handle = try? FileHandle(forWritingTo: journal) {
                handle.seekToEndOfFile()
                handle.write(data)
                try? handle.synchronize()
                try? handle.close()
            } else {
                _ = FileManager.default.createFile(atPath: journal.path, contents: data)
            }
        }
    }
}
