import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing
import WharfServer

/// The HTTP edge as a client sees it: status codes, the error body's shape, auth, body limits.
@Suite(.timeLimit(.minutes(1)))
struct HTTPEdgeTests {
    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var headers: HTTPFields = .adminBearer()
        var body: String?
        var status: HTTPResponse.Status
        var code: String
        var messageContains: String?

        var testDescription: String { "\(method) \(path) → \(status.code) \(code)" }
    }

    static let errorCases: [ErrorCase] = [
        // Unknown routes: public space answers 404, /api/ space asks for the token first.
        .init(method: .get, path: "/no/such/page", headers: [:], status: .notFound, code: "not_found"),
        .init(method: .get, path: "/api/nope", headers: [:], status: .unauthorized, code: "unauthorized"),
        .init(method: .get, path: "/api/nope", status: .notFound, code: "not_found"),
        .init(method: .patch, path: "/api/stacks", status: .notFound, code: "not_found"),
        // APIError thrown by a route.
        .init(method: .delete, path: "/api/environments/e1", status: .conflict, code: "environment_in_use",
              messageContains: "2 stacks"),
        // Bodies that do not decode, through Hummingbird's Request.decode and through JSONDecoder.
        .init(method: .post, path: "/api/stacks", body: #"{"name": "web"}"#, status: .badRequest, code: "invalid_json",
              messageContains: "environmentId"),
        .init(method: .post, path: "/api/stacks", body: "{not json", status: .badRequest, code: "invalid_json"),
        .init(method: .post, path: "/api/compose/render", body: "{not json", status: .badRequest, code: "invalid_json",
              messageContains: "not valid JSON"),
        .init(method: .post, path: "/api/compose/render", body: #"{"name": "web"}"#, status: .badRequest,
              code: "invalid_json", messageContains: "`environmentId` is missing"),
        .init(method: .post, path: "/api/compose/render", body: #"{"name": 7, "environmentId": "e"}"#,
              status: .badRequest, code: "invalid_json", messageContains: "`name` must be a string"),
        // A Hummingbird HTTPError that is not about JSON.
        .init(method: .get, path: "/api/environments/e1", status: .badRequest, code: "bad_request",
              messageContains: "parameter"),
        // Anything else: 500 internal, cause not leaked.
        .init(method: .get, path: "/api/boom", status: .internalServerError, code: "internal"),
    ]

    @Test(arguments: errorCases)
    func everyErrorHasTheContractShape(_ testCase: ErrorCase) async throws {
        let capture = EdgeLogCapture()
        let app = EdgeTestApp.makeApplication(logger: capture.logger())
        try await app.test(.router) { client in
            try await client.execute(
                uri: testCase.path,
                method: testCase.method,
                headers: testCase.headers,
                body: testCase.body.map { ByteBuffer(string: $0) }
            ) { response in
                #expect(response.status == testCase.status)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                let body = try APIErrorBody.decode(response.body)
                #expect(body.error.code == testCase.code)
                #expect(!body.error.message.isEmpty)
                if let fragment = testCase.messageContains {
                    #expect(body.error.message.contains(fragment), "message: \(body.error.message)")
                }
            }
        }
    }

    @Test func internalErrorsAreLoggedButNotLeaked() async throws {
        let capture = EdgeLogCapture()
        let app = EdgeTestApp.makeApplication(logger: capture.logger())
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/boom", method: .get, headers: .adminBearer()) { response in
                #expect(response.status == .internalServerError)
                #expect(!String(buffer: response.body).contains("sqlite"))
                #expect(!String(buffer: response.body).contains("/var/lib"))
            }
        }
        let errors = capture.entries.filter { $0.level == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.fullText.contains("disk I/O error") == true)
    }

    /// A webhook call that fails inside is logged without its token, the webhook's secret.
    @Test(arguments: ["/api/stacks/webhooks/", "//api/stacks//webhooks/"])
    func aFailedWebhookCallIsLoggedWithoutItsToken(prefix: String) async throws {
        let capture = EdgeLogCapture()
        let app = EdgeTestApp.makeApplication(logger: capture.logger())
        try await app.test(.live) { client in
            try await client.execute(uri: prefix + EdgeTestApp.failingWebhookToken + "?tag=v1", method: .post) { response in
                #expect(response.status == .internalServerError)
            }
        }
        let errors = capture.entries.filter { $0.level == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.metadata["http.path"] == "/api/stacks/webhooks/<redacted>")
        let token = EdgeTestApp.failingWebhookToken
        #expect(!capture.entries.contains { $0.fullText.contains(token) || $0.fullText.contains(token.prefix(8)) },
                "\(capture.entries.map(\.fullText))")
    }

    @Test func rateLimitedCarriesRetryAfter() async throws {
        let clock = EdgeTestClock()
        let limiter = RateLimiter(.init(rate: 1, burst: 2))
        let app = EdgeTestApp.makeApplication(logger: EdgeLogCapture().logger(), limiter: limiter, clock: clock)
        let uri = "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)"
        try await app.test(.router) { client in
            for _ in 0..<2 {
                try await client.execute(uri: uri, method: .post) { #expect($0.status == .accepted) }
            }
            try await client.execute(uri: uri, method: .post) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "1")
                let errorCode = try APIErrorBody.decode(response.body).error.code
                #expect(errorCode == "rate_limited")
            }
            clock.advance(by: .seconds(1))
            try await client.execute(uri: uri, method: .post) { #expect($0.status == .accepted) }
        }
    }

    // MARK: Bearer token

    struct AuthCase: Sendable, CustomTestStringConvertible {
        var authorization: String?
        var allowed: Bool
        var testDescription: String { "\(authorization ?? "no header") → \(allowed ? "200" : "401")" }
    }

    static let authCases: [AuthCase] = [
        .init(authorization: nil, allowed: false),
        .init(authorization: "", allowed: false),
        .init(authorization: "Bearer", allowed: false),
        .init(authorization: "Bearer ", allowed: false),
        .init(authorization: "Bearer wrong-token", allowed: false),
        .init(authorization: "Bearer \(EdgeTestApp.adminToken.dropLast())", allowed: false),
        .init(authorization: "Bearer \(EdgeTestApp.adminToken)x", allowed: false),
        .init(authorization: "Bearer \(EdgeTestApp.adminToken.uppercased())", allowed: false),
        .init(authorization: "Basic \(EdgeTestApp.adminToken)", allowed: false),
        .init(authorization: EdgeTestApp.adminToken, allowed: false),
        .init(authorization: "Bearer \(EdgeTestApp.adminToken)", allowed: true),
        .init(authorization: "bearer \(EdgeTestApp.adminToken)", allowed: true),
        .init(authorization: "BEARER  \(EdgeTestApp.adminToken) ", allowed: true),
    ]

    @Test(arguments: authCases)
    func managementRoutesNeedTheAdminToken(_ testCase: AuthCase) async throws {
        let app = EdgeTestApp.makeApplication(logger: EdgeLogCapture().logger())
        let headers: HTTPFields = testCase.authorization.map { [.authorization: $0] } ?? [:]
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/stacks", method: .get, headers: headers) { response in
                if testCase.allowed {
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "stacks")
                } else {
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                    let errorCode = try APIErrorBody.decode(response.body).error.code
                    #expect(errorCode == "unauthorized")
                }
            }
        }
    }

    struct RouteCase: Sendable, CustomTestStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var isPublic: Bool
        var testDescription: String { "\(method) \(path) \(isPublic ? "public" : "needs token")" }
    }

    static let routeCases: [RouteCase] = [
        .init(method: .get, path: "/api/health", isPublic: true),
        .init(method: .head, path: "/api/health", isPublic: true),
        .init(method: .get, path: "/api/health/", isPublic: true),
        .init(method: .post, path: "/api/health", isPublic: false),
        .init(method: .post, path: "/api/agents/enrol", isPublic: true),
        .init(method: .get, path: "/api/agents/enrol", isPublic: false),
        .init(method: .post, path: "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)", isPublic: true),
        .init(method: .post, path: "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)?tag=v1", isPublic: true),
        .init(method: .get, path: "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)", isPublic: false),
        .init(method: .post, path: "/api/stacks/webhooks", isPublic: false),
        .init(method: .post, path: "/api/stacks/s1/webhook", isPublic: false),
        .init(method: .get, path: "/", isPublic: true),
        .init(method: .get, path: "/install-agent.sh", isPublic: true),
        .init(method: .get, path: "/assets/app.js", isPublic: true),
        .init(method: .get, path: "/metrics", isPublic: false),
        .init(method: .get, path: "/METRICS", isPublic: false),
        .init(method: .get, path: "/api/stacks", isPublic: false),
        .init(method: .get, path: "//api//stacks", isPublic: false),
        .init(method: .get, path: "/API/stacks", isPublic: false),
        .init(method: .get, path: "/api", isPublic: false),
        .init(method: .get, path: "/api/stacks?x=/api/health", isPublic: false),
    ]

    @Test(arguments: routeCases)
    func publicRoutes(_ testCase: RouteCase) {
        let path = String(testCase.path.prefix { $0 != "?" })
        #expect(BearerAuth.isPublic(testCase.method, path: path) == testCase.isPublic)
    }

    /// The rule as first written (split, then compare lowercased components): the byte-level
    /// `isPublic` must agree with it on every path.
    static func referenceIsPublic(_ method: HTTPRequest.Method, path: String) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard let first = components.first else { return true }
        if first.lowercased() == "metrics" && components.count == 1 { return false }
        guard first.lowercased() == "api" else { return true }
        switch (method, components.count) {
        case (.get, 2), (.head, 2): return components[1] == "health"
        case (.post, 3): return components[1] == "agents" && components[2] == "enrol"
        case (.post, 4): return components[1] == "stacks" && components[2] == "webhooks"
        default: return false
        }
    }

    @Test func publicRoutesAgreeWithTheRuleAsFirstWrittenOnManyPaths() {
        let words = ["", "api", "API", "Api", "aPi", "apii", "ap", "metrics", "METRICS", "Metrics", "metric", "health", "Health",
                     "agents", "enrol", "stacks", "Stacks", "webhooks", "webhook", EdgeTestApp.webhookToken, "é", "\u{212A}",
                     "api\u{0301}", "x"]
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        for _ in 0..<20_000 {
            var path = Bool.random(using: &generator) ? "/" : ""
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                path += words.randomElement(using: &generator)! + String(repeating: "/", count: Int.random(in: 0...2, using: &generator))
            }
            for method in [HTTPRequest.Method.get, .head, .post, .put, .delete] {
                #expect(BearerAuth.isPublic(method, path: path) == Self.referenceIsPublic(method, path: path), "\(method) \(path)")
                checked += 1
            }
        }
        #expect(checked == 100_000)
    }

    @Test func publicRoutesAnswerWithoutTokenAndMetricsDoesNot() async throws {
        let app = EdgeTestApp.makeApplication(logger: EdgeLogCapture().logger())
        try await app.test(.router) { client in
            for (path, method) in [("/api/health", HTTPRequest.Method.get), ("/api/agents/enrol", .post),
                                   ("/", .get), ("/install-agent.sh", .get)] {
                try await client.execute(uri: path, method: method) { response in
                    #expect(response.status == .ok, "\(method) \(path)")
                }
            }
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "//api//stacks", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: .adminBearer()) { #expect($0.status == .ok) }
        }
    }

    @Test func tokensNeverReachTheLog() async throws {
        let capture = EdgeLogCapture()
        let app = EdgeTestApp.makeApplication(logger: capture.logger())
        let wrong = "Bearer guess-0123456789abcdef"
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/stacks", method: .get, headers: [.authorization: wrong]) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/api/stacks", method: .get, headers: .adminBearer()) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/boom", method: .get, headers: .adminBearer()) {
                #expect($0.status == .internalServerError)
            }
        }
        #expect(!capture.entries.isEmpty, "the test must see the debug log of the rejection")
        for entry in capture.entries {
            #expect(!entry.fullText.contains(EdgeTestApp.adminToken))
            #expect(!entry.fullText.contains("guess-0123456789abcdef"))
        }
    }

    @Test(arguments: [
        ("same", "same", true), ("same", "sam", false), ("sam", "same", false), ("", "x", false),
        ("abcdef", "abcdeg", false), ("gbcdef", "abcdef", false),
    ])
    func constantTimeComparison(presented: String, expected: String, equal: Bool) {
        #expect(BearerAuth.constantTimeEquals(presented.utf8, Array(expected.utf8)) == equal)
    }

    // MARK: Body limit

    @Test(arguments: [false, true])
    func bodiesOverOneMiBAreRefused(chunked: Bool) async throws {
        let app = EdgeTestApp.makeApplication(logger: EdgeLogCapture().logger(), simulateChunkedBodies: chunked)
        let twoMiB = ByteBuffer(repeating: UInt8(ascii: "a"), count: 2 << 20)
        let oneMiBPlusOne = ByteBuffer(repeating: UInt8(ascii: "a"), count: (1 << 20) + 1)
        let exactlyOneMiB = ByteBuffer(repeating: UInt8(ascii: " "), count: 1 << 20)
        try await app.test(.router) { client in
            for body in [twoMiB, oneMiBPlusOne] {
                try await client.execute(uri: "/api/stacks", method: .post, headers: .adminBearer(), body: body) { response in
                    #expect(response.status == .contentTooLarge)
                    let error = try APIErrorBody.decode(response.body)
                    #expect(error.error.code == "payload_too_large")
                    #expect(error.error.message.contains("1 MiB"))
                }
            }
            // Exactly the limit reaches the route, which then finds it is not JSON.
            try await client.execute(uri: "/api/stacks", method: .post, headers: .adminBearer(), body: exactlyOneMiB) {
                response in
                #expect(response.status == .badRequest)
                let errorCode = try APIErrorBody.decode(response.body).error.code
                #expect(errorCode == "invalid_json")
            }
            // The public webhook route is limited too, before its token is even checked for rate.
            try await client.execute(
                uri: "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)",
                method: .post,
                headers: [.contentType: "application/json"],
                body: twoMiB
            ) { response in
                #expect(response.status == .contentTooLarge)
                let errorCode = try APIErrorBody.decode(response.body).error.code
                #expect(errorCode == "payload_too_large")
            }
        }
    }

    @Test(arguments: [(10, "10 bytes"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB"), (1_000_000, "1000000 bytes")])
    func payloadTooLargeNamesTheLimit(limit: Int, text: String) {
        let error = APIError.payloadTooLarge(limit: limit)
        #expect(error.status == .contentTooLarge)
        #expect(error.code == "payload_too_large")
        #expect(error.message.contains(text))
    }

    @Test func liveServerRefusesLargeBodiesAndKeepsServing() async throws {
        let app = EdgeTestApp.makeApplication(
            logger: EdgeLogCapture().logger(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await app.test(.live) { client in
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 << 20)
            try await client.execute(
                uri: "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)",
                method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: big
            ) { response in
                #expect(response.status == .contentTooLarge)
                let errorCode = try APIErrorBody.decode(response.body).error.code
                #expect(errorCode == "payload_too_large")
            }
            try await client.execute(uri: "/api/health", method: .get) { #expect($0.status == .ok) }
        }
    }
}

/// Requests written byte for byte to a live server, for what the test clients cannot send:
/// a chunked body without Content-Length.
@Suite(.timeLimit(.minutes(1)))
struct ChunkedBodyTests {
    @Test func chunkedBodyOverTheLimitIsRefusedAndSmallOneAccepted() async throws {
        let app = EdgeTestApp.makeApplication(
            logger: EdgeLogCapture().logger(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let path = "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)?pullimage=false"

            let bigChunks = Array(repeating: ByteBuffer(repeating: UInt8(ascii: "a"), count: 64 << 10), count: 32)
            let refused = try await RawHTTPClient.post(port: port, path: path, contentType: "application/x-www-form-urlencoded", chunks: bigChunks)
            #expect(refused.status == 413)
            #expect(refused.headers["transfer-encoding"] == nil)
            let errorCode = try APIErrorBody.decode(ByteBuffer(string: refused.body)).error.code
            #expect(errorCode == "payload_too_large")

            let small = [ByteBuffer(string: "SERVICE_TAG=devel"), ByteBuffer(string: "opment&tag=v2")]
            let accepted = try await RawHTTPClient.post(port: port, path: path, contentType: "application/x-www-form-urlencoded", chunks: small)
            #expect(accepted.status == 202)
            let summary = try JSONDecoder().decode(WebhookTriggerSummary.self, from: Data(accepted.body.utf8))
            #expect(summary.variables == ["SERVICE_TAG": "development"])
            #expect(summary.tag == "v2")
            #expect(summary.pull == false)
        }
    }
}

enum RawHTTPClient {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// POSTs `chunks` with `Transfer-Encoding: chunked` and reads one response.
    static func post(port: Int, path: String, contentType: String, chunks: [ByteBuffer]) async throws -> Reply {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string:
                "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: \(contentType)\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n"))
            for chunk in chunks {
                var framed = ByteBuffer(string: String(chunk.readableBytes, radix: 16) + "\r\n")
                framed.writeImmutableBuffer(chunk)
                framed.writeString("\r\n")
                try await outbound.write(framed)
            }
            try await outbound.write(ByteBuffer(string: "0\r\n\r\n"))

            var received = ""
            for try await part in inbound {
                received += String(buffer: part)
                if let reply = Self.parse(received) {
                    return reply
                }
            }
            throw CancellationError()
        }
    }

    /// A complete response with a Content-Length, or nil while more is needed.
    private static func parse(_ text: String) -> Reply? {
        guard let headEnd = text.range(of: "\r\n\r\n") else {
            return nil
        }
        let lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else {
            return nil
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let body = text[headEnd.upperBound...]
        guard let length = headers["content-length"].flatMap(Int.init), body.utf8.count >= length else {
            return nil
        }
        return Reply(status: status, headers: headers, body: String(body))
    }
}
