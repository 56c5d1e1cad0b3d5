import Foundation

@testable import WharfAgent

/// Builds tiny test images from the host's static busybox — no Docker Hub — and pushes them.
///
/// An image is a rootfs of `bin/busybox` (with `sh`, `httpd`, `wget`, `sleep`, `false` links)
/// and `www/index.html`, imported with `docker import` and a `CMD`. The web image serves its
/// content with busybox httpd on `127.0.0.1:$PORT`; stacks run it with `network_mode: host`.
struct TestImages: Sendable {
    let docker: TestDocker

    /// What a container of the image does.
    enum Behaviour: Sendable {
        /// Serves `content` at `/` and `ok` at `/health`.
        case web
        /// Serves `content` at `/` but has no `/health`, so an HTTP healthcheck fails.
        case webWithoutHealth
        /// Prints a line and exits with code 3 at once.
        case crash
    }

    static let webCommand = #"CMD ["/bin/sh","-c","exec httpd -f -p 127.0.0.1:${PORT} -h /www"]"#
    static let crashCommand = #"CMD ["/bin/sh","-c","echo crashing on purpose; exit 3"]"#

    /// Builds `reference`, serving `content`, and pushes it unless `push` is false.
    func build(_ reference: String, content: String, behaviour: Behaviour = .web, push: Bool = true) async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-test-image-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: work) }
        let rootfs = work.appendingPathComponent("rootfs")
        let bin = rootfs.appendingPathComponent("bin")
        let www = rootfs.appendingPathComponent("www")
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: bin, withIntermediateDirectories: true)
        try fileManager.createDirectory(at: www, withIntermediateDirectories: true)
        try fileManager.createDirectory(at: rootfs.appendingPathComponent("tmp"), withIntermediateDirectories: true)

        guard let busybox = ["/bin/busybox", "/usr/bin/busybox"].first(where: fileManager.isExecutableFile(atPath:)) else {
            throw TestSetupError(description: "busybox is not installed (apt-get install busybox-static)")
        }
        try fileManager.copyItem(atPath: busybox, toPath: bin.appendingPathComponent("busybox").path)
        for applet in ["sh", "httpd", "wget", "sleep", "false", "test", "cat"] {
            try fileManager.createSymbolicLink(atPath: bin.appendingPathComponent(applet).path, withDestinationPath: "busybox")
        }
        try Data(content.utf8).write(to: www.appendingPathComponent("index.html"))
        if behaviour == .web {
            try Data("ok".utf8).write(to: www.appendingPathComponent("health"))
        }

        let tarball = work.appendingPathComponent("rootfs.tar")
        let tar = CommandRunner(environment: ["PATH": ExecutableLookup.defaultSearchPath])
        guard let tarPath = ExecutableLookup.find("tar", searchPath: ExecutableLookup.defaultSearchPath) else {
            throw TestSetupError(description: "tar is not installed")
        }
        let packed = try await tar.run(tarPath, ["-C", rootfs.path, "-cf", tarball.path, "."], timeout: .seconds(60))
        guard packed.succeeded else { throw TestSetupError(description: "tar failed: \(packed.tailText)") }

        let command = behaviour == .crash ? Self.crashCommand : Self.webCommand
        try await docker.run(["import", "--change", command, tarball.path, reference])
        if push {
            try await docker.run(["push", reference])
        }
    }
}
