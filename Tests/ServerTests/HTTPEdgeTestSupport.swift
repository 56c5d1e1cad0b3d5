import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing
import WharfServer

/// Log records kept in memory, so tests can check what was (and was not) logged.
final class EdgeLogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata

        /// Message and metadata as one string, to search for leaks.
        var fullText: String {
            "\(self.message) \(self.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        }
    }

    private let storage = Mutex<[Entry]>([])

    var entries: [Entry] {
        self.storage.withLock { $0 }
    }

    func append(_ entry: Entry) {
        self.storage.withLock { $0.append(entry) }
    }

    /// A logger that records everything, down to trace level.
    func logger(label: String = "wharf-test") -> Logger {
        Logger(label: label) { _ in EdgeCapturingLogHandler(capture: self) }
    }
}

struct EdgeCapturingLogHandler: LogHandler {
    let capture: EdgeLogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        self.capture.append(.init(level: event.level, message: "\(event.message)", metadata: merged))
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }
}

/// A clock the test moves by hand.
final class EdgeTestClock: Sendable {
    private let instant: Mutex<ContinuousClock.Instant>

    init(start: ContinuousClock.Instant = .now) {
        self.instant = Mutex(start)
    }

    var now: ContinuousClock.Instant {
        self.instant.withLock { $0 }
    }

    func advance(by duration: Duration) {
        self.instant.withLock { $0 = $0.advanced(by: duration) }
    }
}

/// The `{"error": {"code", "message"}}` body, decoded strictly: no other keys allowed.
struct APIErrorBody: Decodable, Equatable {
    struct Detail: Decodable, Equatable {
        var code: String
        var message: String
    }

    var error: Detail

    /// Decodes an error body and checks it has exactly the contract's keys.
    static func decode(_ buffer: ByteBuffer) throws -> APIErrorBody {
        let data = Data(buffer.readableBytesView)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["error"])
        let detail = try #require(object["error"] as? [String: Any])
        #expect(Set(detail.keys) == ["code", "message"])
        return try JSONDecoder().decode(APIErrorBody.self, from: data)
    }
}

/// What the test webhook route answers: the parsed trigger, flattened for JSON.
struct WebhookTriggerSummary: Codable, Equatable, ResponseEncodable {
    var source: String
    var tag: String?
    var pull: Bool
    var wait: Int?
    var variables: [String: String]
    var targets: [String]
    var eventIds: [String]

    init(_ trigger: WebhookTrigger) {
        self.source = trigger.source.rawValue
        self.tag = trigger.tag
        self.pull = trigger.pull
        self.wait = trigger.wait
        self.variables = trigger.variables
        self.targets = trigger.targets.map(\.description)
        self.eventIds = trigger.eventIds
    }
}

struct WebhookIgnoredBody: Codable, Equatable, ResponseEncodable {
    var ignored: String
}

/// A small app with the HTTP edge mounted as the server will mount it, plus dummy routes.
enum EdgeTestApp {
    static let adminToken = "wharf-admin-3c9f1e0a7b2d4e6f"
    static let webhookToken = "8f14e45f-ceea-467a-9af3-8a4d1e2b3c4d"
    /// A webhook token whose call fails inside with an error that is not an `APIError`.
    static let failingWebhookToken = "5d41402a-bc4b-4a76-b971-9d911017c592"

    /// Something failing deep inside, whose description must never reach a client.
    struct DiskFailure: Error, CustomStringConvertible {
        var description: String { "sqlite3_step failed: disk I/O error at /var/lib/wharf/wharf.sqlite" }
    }

    struct NewStack: Decodable {
        var name: String
        var environmentId: String
    }

    static func makeApplication(
        logger: Logger,
        limiter: RateLimiter = RateLimiter(.perWebhookToken),
        clock: EdgeTestClock = EdgeTestClock(),
        simulateChunkedBodies: Bool = false,
        configuration: ApplicationConfiguration = .init()
    ) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: APIErrorMiddleware())
        if simulateChunkedBodies {
            router.add(middleware: DropContentLengthMiddleware())
        }
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: BearerAuthMiddleware(adminToken: Self.adminToken))

        router.get("/") { _, _ in "web UI" }
        router.get("/install-agent.sh") { _, _ in "#!/bin/sh\n" }
        router.get("/metrics") { _, _ in "# metrics\n" }
        router.get("/api/health") { _, _ in "ok" }
        router.post("/api/agents/enrol") { _, _ in "enrolled" }
        router.get("/api/stacks") { _, _ in "stacks" }
        router.post("/api/stacks") { request, context -> HTTPResponse.Status in
            _ = try await request.decode(as: NewStack.self, context: context)
            return .created
        }
        router.post("/api/compose/render") { request, context -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            _ = try JSONDecoder().decode(NewStack.self, from: Data(body.readableBytesView))
            return .ok
        }
        router.get("/api/environments/:id") { _, context -> String in
            _ = try context.parameters.require("missing")
            return "unreachable"
        }
        router.delete("/api/environments/:id") { _, _ -> String in
            throw APIError.environmentInUse(stackCount: 2)
        }
        router.get("/api/boom") { _, _ -> String in
            throw DiskFailure()
        }
        router.post("/api/stacks/webhooks/:token") { request, context -> Response in
            if context.parameters.get("token") == Self.failingWebhookToken { throw DiskFailure() }
            // Cheap shape check first, then the "store", then the rate limit, then the body.
            guard let token = context.parameters.get("token").flatMap({ WebhookToken($0) }),
                token.rawValue == Self.webhookToken
            else {
                throw APIError.notFound
            }
            if case .limited(let retryAfter) = limiter.acquire(token.rawValue, now: clock.now) {
                throw APIError.rateLimited(retryAfter: retryAfter)
            }
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            let trigger = try WebhookTrigger.parse(request: request, body: body)
            if let ignored = trigger.ignored {
                return try WebhookIgnoredBody(ignored: ignored).response(from: request, context: context)
            }
            var response = try WebhookTriggerSummary(trigger).response(from: request, context: context)
            response.status = .accepted
            return response
        }
        return Application(router: router, configuration: configuration, logger: logger)
    }
}

/// Makes a request look as if it came chunked: no Content-Length, body streamed as it arrives.
struct DropContentLengthMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var head = request.head
        head.headerFields[.contentLength] = nil
        return try await next(Request(head: head, body: request.body), context)
    }
}

extension HTTPFields {
    static func adminBearer(_ token: String = EdgeTestApp.adminToken) -> HTTPFields {
        [.authorization: "Bearer \(token)"]
    }
}
