import Foundation
import Testing
import WharfTestSupport
@testable import WharfServer

/// `endpoints.json` tells tools on the server's host where to reach it: a wildcard bind is written
/// as the loopback address that reaches it, as the HTTP endpoint is.
struct EndpointsFileTests {
    @Test(arguments: [
        ("tcp://0.0.0.0:9001", "tcp://127.0.0.1:9001"),
        ("tcp://[::]:9001", "tcp://[::1]:9001"),
        ("tcp://127.0.0.1:40123", "tcp://127.0.0.1:40123"),
        ("tcp://10.0.0.5:9001", "tcp://10.0.0.5:9001"),
    ])
    func aWildcardBindIsWrittenAsLoopback(bound: String, written: String) throws {
        let work = try temporaryDirectory("wharf-endpoints")
        defer { try? FileManager.default.removeItem(at: work) }
        let directory = try ServerDataDirectory(url: work.appendingPathComponent("data"))
        try directory.writeEndpoints(http: "http://127.0.0.1:9000", zmq: bound)
        let file = try Data(contentsOf: work.appendingPathComponent("data/endpoints.json"))
        let endpoints = try JSONSerialization.jsonObject(with: file) as? [String: String]
        #expect(endpoints == ["http": "http://127.0.0.1:9000", "zmq": written])
    }
}
