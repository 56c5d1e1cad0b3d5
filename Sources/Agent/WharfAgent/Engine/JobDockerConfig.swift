import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A job-scoped `DOCKER_CONFIG` directory: mode 0700, a `config.json` (0600) holding the job's
/// registry credentials, deleted when the job ends.
///
/// Credentials thus never touch the agent's disk beyond the job, and one job's credentials are
/// never seen by another job.
struct JobDockerConfig: Sendable {
    /// The directory to pass as `DOCKER_CONFIG`.
    let directory: URL

    /// Creates the directory under `parent` and writes the credentials.
    ///
    /// - Parameter pluginDirectory: the agent's own `cli-plugins` directory, linked in so that a
    ///   `docker compose` plugin installed per user stays visible with the job's `DOCKER_CONFIG`.
    static func create(
        under parent: URL,
        credentials: [RegistryCredential],
        pluginDirectory: URL?
    ) throws -> JobDockerConfig {
        let fileManager = FileManager.default
        do {
            // The parent is shared (often the system temp directory): create it if missing, never chmod it.
            if !fileManager.fileExists(atPath: parent.path) {
                try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
            }
            let directory = parent.appendingPathComponent("\(namePrefix)\(UUID().uuidString.lowercased())")
            // mkdir with the final mode: FileManager creates with 0777 & ~umask and chmods afterwards, which
            // leaves a moment in which the credentials' directory is readable by others.
            guard mkdir(directory.path, 0o700) == 0 else {
                throw ContainerEngineError(.composeFailed, "could not create \(directory.path): \(String(cString: strerror(errno)))")
            }
            let scope = JobDockerConfig(directory: directory)
            do {
                let config = directory.appendingPathComponent("config.json")
                guard
                    fileManager.createFile(
                        atPath: config.path,
                        contents: try configJSON(credentials),
                        attributes: [.posixPermissions: 0o600]
                    )
                else {
                    throw ContainerEngineError(.composeFailed, "could not write \(config.path)")
                }
                if let pluginDirectory, fileManager.fileExists(atPath: pluginDirectory.path) {
                    try fileManager.createSymbolicLink(
                        at: directory.appendingPathComponent("cli-plugins"),
                        withDestinationURL: pluginDirectory
                    )
                }
            } catch {
                scope.remove()
                throw error
            }
            return scope
        } catch let error as ContainerEngineError {
            throw error
        } catch {
            throw ContainerEngineError(
                .composeFailed,
                "could not create a job docker config under \(parent.path): \(error.localizedDescription)"
            )
        }
    }

    /// `{"auths": {"host:port": {"auth": base64(user:pass)}}}`, as `docker login` writes it.
    static func configJSON(_ credentials: [RegistryCredential]) throws -> Data {
        struct Auth: Encodable { var auth: String }
        struct Config: Encodable { var auths: [String: Auth] }
        var auths: [String: Auth] = [:]
        for credential in credentials {
            let token = Data("\(credential.username):\(credential.password)".utf8).base64EncodedString()
            auths[authKey(credential.registry)] = Auth(auth: token)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Config(auths: auths))
    }

    /// The key Docker uses for a registry: Docker Hub's historical index URL, else `host[:port]`.
    static func authKey(_ registry: String) -> String {
        var host = registry
        for scheme in ["https://", "http://"] where host.hasPrefix(scheme) {
            host.removeFirst(scheme.count)
        }
        while host.hasSuffix("/") { host.removeLast() }
        switch host {
        case "docker.io", "index.docker.io", "registry-1.docker.io", "index.docker.io/v1":
            return "https://index.docker.io/v1/"
        default:
            return host
        }
    }

    /// Deletes the directory and the credentials in it.
    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The start of every job config directory's name.
    static let namePrefix = "wharf-docker-config-"

    /// Deletes the job config directories left under `parent` by an agent that stopped mid-job
    /// (killed, or the machine lost power), with the credentials in them; returns how many.
    /// Only for a directory of the agent's own: in a shared one they may be another agent's.
    static func removeLeftovers(under parent: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        var removed = 0
        for name in names where name.hasPrefix(namePrefix) {
            if (try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))) != nil { removed += 1 }
        }
        return removed
    }
}
