import Foundation
import Testing
import WharfTestSupport

/// The test support's `ServerProcess`: a port taken between `freePort()` and the server's bind (by
/// another test's process, in a full run) costs a retry on new ports, not a failed test.
@Suite(.timeLimit(.minutes(2)))
struct ServerProcessTests {
    @Test func aFirstStartWhosePortIsTakenStartsAgainOnNewPorts() async throws {
        let work = try temporaryDirectory("wharf-ports")
        defer { try? FileManager.default.removeItem(at: work) }
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let taken = server.zmqPort
        // Another process's listener on the port the server is about to bind.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(taken).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 1) == 0)

        let api = try await server.start()
        #expect(server.zmqPort != taken)
        #expect(try await api.call("GET", "/api/health").0 == 200)
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "n"], expect: 201)
        #expect((created["environment"] as? [String: Any])?["id"] is String)
        await server.child?.stop()
    }
}
