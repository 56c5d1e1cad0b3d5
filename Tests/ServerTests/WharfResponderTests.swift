import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Testing
import WharfTestSupport
@testable import WharfServer

/// The webhook route looked up by its bytes before the router (`WharfResponder`): which paths take
/// that way, and that they end where the router would have sent them.
struct WharfResponderTests {
    @Test(arguments: [
        ("/api/stacks/webhooks/638e6967-2f1c-4b8e-9a51-0c6f1d2e3a4b", "638e6967-2f1c-4b8e-9a51-0c6f1d2e3a4b"),
        ("/api/stacks/webhooks/x", "x"),
        ("/api/stacks/webhooks/ünï", "ünï"),
        ("/api/stacks/webhooks/", nil),
        ("/api/stacks/webhooks", nil),
        ("/api/stacks/webhooks/abc/", nil),
        ("/api/stacks/webhooks//abc", nil),
        ("/api/stacks/webhooks/abc/def", nil),
        ("/api/stacks/webhooksabc", nil),
        ("/API/stacks/webhooks/abc", nil),
        ("//api/stacks/webhooks/abc", nil),
        ("/api/stacks/abc/webhook", nil),
    ] as [(String, String?)])
    func theWebhookPathIsOneTokenAfterTheExactPrefix(_ path: String, _ token: String?) {
        #expect(WharfResponder.webhookToken(in: path).map(String.init) == token)
    }

    /// A responder that says which way a request came and which token it was given.
    static func marked(_ way: String) -> @Sendable (Request, WharfRequestContext) async throws -> Response {
        { _, context in
            let token = try context.parameters.require("token")
            return Response(status: .accepted, headers: [HTTPField.Name("X-Way")!: way], body: .init(byteBuffer: ByteBuffer(string: token)))
        }
    }

    @Test func onlyThePostOfTheExactPathTakesTheShortcutAndItRunsTheRoutesMiddleware() async throws {
        let router = Router(context: WharfRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: BearerAuthMiddleware(adminToken: "admin"))
        router.post("/api/stacks/webhooks/{token}", use: Self.marked("router"))
        let responder = WharfResponder(
            router: router.buildResponder(),
            webhook: router.middlewares.constructResponder(finalResponder: CallbackResponder(callback: Self.marked("shortcut"))))
        try await Application(responder: responder).test(.router) { client in
            try await client.execute(uri: "/api/stacks/webhooks/abc", method: .post) { response in
                #expect(response.status == .accepted)
                #expect(response.headers[HTTPField.Name("X-Way")!] == "shortcut")
                #expect(String(buffer: response.body) == "abc")
            }
            try await client.execute(uri: "/api/stacks/webhooks/abc/", method: .post) { response in
                #expect(response.headers[HTTPField.Name("X-Way")!] == "router")
                #expect(String(buffer: response.body) == "abc")
            }
            // Another method goes to the router, whose middleware asks for the admin token (only the POST is public).
            try await client.execute(uri: "/api/stacks/webhooks/abc", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[HTTPField.Name("X-Way")!] == nil)
            }
            // The route's middleware runs on the shortcut too: a body over 1 MiB is refused before the handler.
            try await client.execute(uri: "/api/stacks/webhooks/abc", method: .post,
                                     body: ByteBuffer(repeating: 0x61, count: (1 << 20) + 1)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(response.headers[HTTPField.Name("X-Way")!] == nil)
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aCallByEitherWayReachesTheSameHandler() async throws {
        let work = try temporaryDirectory("wharf-responder")
        let server = ServerProcess(dataDirectory: work.appendingPathComponent("server"))
        let api = try await server.start()
        let (_, created) = try await api.call("POST", "/api/environments", json: ["name": "node"], expect: 201)
        let environmentId = (created["environment"] as! [String: Any])["id"] as! String
        let (_, stackBody) = try await api.call("POST", "/api/stacks", json: [
            "name": "app", "environmentId": environmentId, "compose": "services:\n  web:\n    image: demo/web:1\n"], expect: 201)
        let stackId = (stackBody["stack"] as! [String: Any])["id"] as! String
        let (_, hook) = try await api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        let url = hook["url"] as! String

        // No agent: both join the stack's queued first deploy. The second path (a trailing `/`)
        // is not the byte match's, so the router takes it.
        let (fastStatus, fast, fastResponse) = try await WebhookAPITests.post(url)
        let (routedStatus, routed, _) = try await WebhookAPITests.post(url + "/")
        #expect(fastStatus == 202 && routedStatus == 202)
        let fastJob = try #require(fast["job"] as? [String: Any]), routedJob = try #require(routed["job"] as? [String: Any])
        #expect(fastJob["id"] as? String == routedJob["id"] as? String)
        #expect(fastJob["coalesced"] as? Int == 1 && routedJob["coalesced"] as? Int == 2)
        #expect(fastResponse.value(forHTTPHeaderField: "Location") == "/api/jobs/\(fastJob["id"] as! String)")

        // The middleware runs on the byte match too: an unknown token's 404 and an oversized body's
        // 413 are the contract's JSON errors, as through the router.
        let base = String(url[..<url.range(of: "/api/")!.lowerBound])
        for path in ["/api/stacks/webhooks/00000000-0000-4000-8000-000000000000", "/api/stacks/webhooks/00000000-0000-4000-8000-000000000000/"] {
            let (status, body, _) = try await WebhookAPITests.post(base + path)
            #expect(status == 404 && (body["error"] as? [String: Any])?["code"] as? String == "not_found", "\(path): \(body)")
        }
        let (tooLarge, tooLargeBody, _) = try await WebhookAPITests.post(url, contentType: "application/json", body: Data(count: (1 << 20) + 1))
        #expect(tooLarge == 413, "\(tooLargeBody)")
        #expect(tooLargeBody["error"] != nil)
        await server.child?.stop()
        try? FileManager.default.removeItem(at: work)
    }
}
