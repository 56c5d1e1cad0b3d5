import Foundation

/// The compose CLI a job runs: an executable and the arguments that come before compose's own.
///
/// Both flavours get the same compose arguments; only the prefix differs
/// (`docker compose …` against `docker-compose …`).
struct ComposeCommand: Sendable, Equatable {
    var flavour: ComposeFlavour
    /// The resolved path of the executable (`docker` or `docker-compose`).
    var executable: String
    /// The arguments before compose's own (`["compose"]` for the plugin).
    var prefix: [String]
    /// Whether `up` takes `--pull`: Compose v2, as the plugin or as a standalone binary. Compose v1
    /// (`docker-compose` 1.x) has none, and its `up` never pulls an image that is present, whatever
    /// the service's `pull_policy` (checked with 1.29.2).
    var upTakesPull = true
    /// What a user would type for this command, when it differs from the executable and prefix:
    /// the plugin run as its own binary (``pluginBinaryCandidates``) is still `docker compose`.
    var typed: String?

    /// `up` options that make it run the images present, for a rollback to local-only
    /// `wharf-rollback/...` tags: Compose v2 would pull them for a service with
    /// `pull_policy: always` (and fail: no registry has them) and build one with `pull_policy: build`.
    var localImagesOnly: [String] {
        upTakesPull ? ["--no-build", "--pull", "never"] : ["--no-build"]
    }

    /// Whether a compose of this version (as `version --short` prints it) takes `up --pull`: all but 1.x.
    static func upTakesPull(version: String) -> Bool {
        let trimmed = version.hasPrefix("v") ? version.dropFirst() : Substring(version)
        return !trimmed.hasPrefix("1.")
    }

    /// Splits a `--compose-command` value such as `"docker compose"` into words.
    ///
    /// Plain space splitting, never a shell: quotes and `$` have no meaning here.
    static func words(_ commandLine: String) -> [String] {
        commandLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// The compose command for explicit words, or nil when they are empty or the executable is not found.
    ///
    /// `docker compose` (a last word `compose` after the executable) is the plugin; anything
    /// else, such as `docker-compose` or `/opt/bin/docker-compose`, is a standalone binary.
    static func explicit(_ words: [String], dockerExecutable: String, searchPath: String) -> ComposeCommand? {
        guard let first = words.first else { return nil }
        let executable: String?
        if first == "docker" {
            executable = dockerExecutable
        } else {
            executable = ExecutableLookup.find(first, searchPath: searchPath)
        }
        guard let executable else { return nil }
        let rest = Array(words.dropFirst())
        let flavour: ComposeFlavour = rest.last == "compose" ? .plugin : .standalone
        return ComposeCommand(flavour: flavour, executable: executable, prefix: rest)
    }

    /// Arguments for one compose invocation on a project and its files.
    func arguments(project: String, files: [String], _ command: [String]) -> [String] {
        var arguments = prefix
        arguments += ["-p", project]
        for file in files { arguments += ["-f", file] }
        return arguments + command
    }

    /// The words a user would type, for log lines.
    var displayName: String {
        if let typed { return "\(typed) (\(executable))" }
        return ([URL(fileURLWithPath: executable).lastPathComponent] + prefix).joined(separator: " ")
    }

    /// Whether this is `docker compose` run through the docker CLI, which could run the plugin's
    /// binary itself instead.
    func isPluginThroughDocker(dockerExecutable: String) -> Bool {
        flavour == .plugin && executable == dockerExecutable && prefix == ["compose"]
    }

    /// Where the docker CLI looks for its compose plugin on Linux, in its order, after the
    /// `cli-plugins` directory of its config, which for a job is the job's own (empty) `DOCKER_CONFIG`.
    static let pluginBinaryCandidates = [
        "/usr/local/lib/docker/cli-plugins/docker-compose",
        "/usr/local/libexec/docker/cli-plugins/docker-compose",
        "/usr/lib/docker/cli-plugins/docker-compose",
        "/usr/libexec/docker/cli-plugins/docker-compose",
    ]

    /// The plugin's binary run standalone (Compose v2 runs so when the docker CLI did not start
    /// it): the same compose, with the same arguments, without starting the docker CLI and its
    /// plugin metadata call first (about 0.2 s a call on a 2-vCPU VM).
    static func pluginBinary(_ path: String) -> ComposeCommand {
        ComposeCommand(flavour: .plugin, executable: path, prefix: [], upTakesPull: true, typed: "docker compose")
    }
}

/// Finds executables on a search path, as a shell would, without running one.
enum ExecutableLookup {
    /// The search path used when the agent has no `PATH`.
    static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The full path of `name` (returned as is when it contains a slash), or nil if not found.
    static func find(_ name: String, searchPath: String) -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }
}
