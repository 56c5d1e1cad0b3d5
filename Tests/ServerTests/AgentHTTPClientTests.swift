import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WharfAgent
import WharfTestSupport

/// The agent's small HTTP client against live HTTP servers: a Hummingbird application for framing
/// (Content-Length, chunked, slow answers) and a real `wharf-server` for enrolment — over its own
/// socket and through the `curl` program, the path `https://` URLs take.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct AgentHTTPClientTests {
    static let transports: [AgentHTTPClient.Transport] = [.automatic, .curl]

    /// Routes that answer in the framings a server may use.
    static func makeApplication() -> some ApplicationProtocol {
        let router = Router()
        router.post("echo") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let answer = [
                "body": String(buffer: body),
                "authorization": request.headers[.authorization] ?? "",
                "contentType": request.headers[.contentType] ?? "",
                "query": request.uri.query ?? "",
            ]
            let json = try JSONEncoder().encode(answer)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
        }
        router.get("chunked") { _, _ -> Response in
            // No Content-Length: Hummingbird sends Transfer-Encoding: chunked.
            Response(status: .ok, body: ResponseBody { writer in
                for part in ["{\"parts\":", "[1,", "2,", "3]}"] {
                    try await writer.write(ByteBuffer(string: part))
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await writer.finish(nil)
            })
        }
        router.get("large") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 3 << 20)))
        }
        router.get("slow") { _, _ -> Response in
            try await Task.sleep(for: .seconds(10))
            return Response(status: .ok)
        }
        router.get("refused") { _, _ -> Response in
            Response(status: .unauthorized, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"unauthorized","message":"no such token"}}"#)))
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                           logger: Logger(label: "http-client-test"))
    }

    @Test(arguments: transports)
    func bodiesHeadersAndQueriesArriveAndAnswersAreFramedRight(transport: AgentHTTPClient.Transport) async throws {
        try await Self.makeApplication().test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let http = AgentHTTPClient(transport: transport, timeout: .seconds(10))
            struct Echo: Decodable { var body: String; var authorization: String; var contentType: String; var query: String }
            let echo = try await http.json("POST", base + "/echo?a=1&b=x%20y", body: ["say": "hé \"quoted\"\n"],
                                           headers: [("Authorization", "Bearer secret")], as: Echo.self)
            #expect(try JSONDecoder().decode([String: String].self, from: Data(echo.body.utf8)) == ["say": "hé \"quoted\"\n"])
            #expect(echo.authorization == "Bearer secret")
            #expect(echo.contentType == "application/json")
            #expect(echo.query == "a=1&b=x%20y")

            struct Parts: Decodable, Equatable { var parts: [Int] }
            #expect(try await http.json("GET", base + "/chunked", as: Parts.self) == Parts(parts: [1, 2, 3]))

            let large = try await http.send(AgentHTTPRequest(method: "GET", url: base + "/large"))
            #expect(large.status == 200 && large.body.count == 3 << 20 && large.body.allSatisfy { $0 == UInt8(ascii: "x") })

            let refused = await #expect(throws: AgentHTTPStatusError.self) {
                _ = try await http.json("GET", base + "/refused", as: Parts.self)
            }
            #expect(refused?.status == 401 && refused?.code == "unauthorized")
            #expect(refused?.description == "no such token (unauthorized)")
        }
    }

    @Test(arguments: transports)
    func slowAnswersTimeOutAndLargeOnesAreRefused(transport: AgentHTTPClient.Transport) async throws {
        try await Self.makeApplication().test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let started = ContinuousClock.now
            let slow = await #expect(throws: AgentHTTPError.self) {
                _ = try await AgentHTTPClient(transport: transport, timeout: .seconds(1))
                    .send(AgentHTTPRequest(method: "GET", url: base + "/slow"))
            }
            #expect(slow?.code == .timedOut)
            // Well before the answer's 10 s, with room for a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(8), "the deadline bounds the whole exchange")

            let large = await #expect(throws: AgentHTTPError.self) {
                _ = try await AgentHTTPClient(transport: transport, timeout: .seconds(10), responseLimit: 1 << 20)
                    .send(AgentHTTPRequest(method: "GET", url: base + "/large"))
            }
            #expect(large != nil)
        }
    }

    @Test(arguments: transports)
    func aClosedPortAndABadURLAreReportedAsSuch(transport: AgentHTTPClient.Transport) async throws {
        let http = AgentHTTPClient(transport: transport, timeout: .seconds(5))
        let closed = await #expect(throws: AgentHTTPError.self) {
            _ = try await http.send(AgentHTTPRequest(method: "GET", url: "http://127.0.0.1:\(freePort())/"))
        }
        #expect(closed?.code == .unreachable)
        let bad = await #expect(throws: AgentHTTPError.self) {
            _ = try await http.send(AgentHTTPRequest(method: "GET", url: "ftp://127.0.0.1/"))
        }
        #expect(bad?.code == .invalidURL)
    }

    @Test func httpsWithoutCurlSaysWhatIsMissing() async throws {
        let http = AgentHTTPClient(curl: "wharf-no-such-curl")
        let error = await #expect(throws: AgentHTTPError.self) {
            _ = try await http.send(AgentHTTPRequest(method: "GET", url: "https://127.0.0.1:1/"))
        }
        #expect(error?.code == .curlMissing)
        #expect(error?.message.contains("install curl") == true)
    }

    /// Enrolment as `wharf-agent --join` does it, against a real server, over both transports:
    /// the identity is stored, and a spent token is refused with the server's reason.
    @Test(arguments: transports)
    func enrolmentAgainstARealServer(transport: AgentHTTPClient.Transport) async throws {
        let work = try temporaryDirectory("wharf-enrol")
        defer { try? FileManager.default.removeItem(at: work) }
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        defer { Task { await server.child?.stop() } }
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "enrol-1", "type": "agent"], expect: 201)
        let environmentId = try #require((created["environment"] as? [String: Any])?["id"] as? String)
        let token = try #require(created["joinToken"] as? String)

        let client = AgentHTTPClient(transport: transport, timeout: .seconds(20))
        let directory = try AgentDataDirectory(url: work.appendingPathComponent("agent"))
        let identity = try await directory.enrol(server: server.url + "/", joinToken: token, hostname: "h", version: "t", client: client)
        #expect(identity.environmentId == environmentId)
        #expect(identity.endpoint == "tcp://127.0.0.1:\(server.zmqPort)")
        #expect(directory.identity() == identity, "what the server answered is stored")

        let again = await #expect(throws: AgentSetupError.self) {
            _ = try await AgentDataDirectory(url: work.appendingPathComponent("agent-2"))
                .enrol(server: server.url, joinToken: token, hostname: "h", version: "t", client: client)
        }
        #expect(again?.message.hasPrefix("enrolment refused: ") == true)
        #expect(again?.message.contains("(unauthorized)") == true, "the server's code is shown: \(again?.message ?? "")")

        let unreachable = await #expect(throws: AgentSetupError.self) {
            _ = try await AgentDataDirectory(url: work.appendingPathComponent("agent-3"))
                .enrol(server: "http://127.0.0.1:\(freePort())", joinToken: token, hostname: "h", version: "t", client: client)
        }
        #expect(unreachable?.message.hasPrefix("cannot reach http://127.0.0.1:") == true)
        await server.child?.stop()
    }
}

extension AgentHTTPClient.Transport: CustomTestStringConvertible {
    public var testDescription: String {
        switch self {
        case .automatic: "socket"
        case .curl: "curl"
        }
    }
}
