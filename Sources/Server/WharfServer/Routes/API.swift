import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import WharfProtocol

/// The HTTP API: every route of the contract, over the store and the dispatcher.
public struct API: Sendable {
    let store: any WharfStore
    let dispatcher: Dispatcher
    let keys: AgentKeyRegistry
    let settings: ServerSettings
    let adminToken: String
    let logger: Logger
    let metrics: WharfMetrics
    /// The webhook calls' rate limits; nil means none.
    let webhookLimiters: WebhookLimiters?
    /// What the health checks last logged about the store.
    let healthLog = StoreHealthLog()

    init(store: any WharfStore, dispatcher: Dispatcher, keys: AgentKeyRegistry, settings: ServerSettings, adminToken: String,
         logger: Logger, metrics: WharfMetrics, webhookRateLimit: Double? = 20) {
        self.init(store: store, dispatcher: dispatcher, keys: keys, settings: settings, adminToken: adminToken,
                  logger: logger, metrics: metrics, webhookLimiters: webhookRateLimit.map(WebhookLimiters.init(rate:)))
    }

    /// Creates the API with the given limiters (nil: none).
    init(store: any WharfStore, dispatcher: Dispatcher, keys: AgentKeyRegistry, settings: ServerSettings, adminToken: String,
         logger: Logger, metrics: WharfMetrics, webhookLimiters: WebhookLimiters?) {
        self.store = store
        self.dispatcher = dispatcher
        self.keys = keys
        self.settings = settings
        self.adminToken = adminToken
        self.logger = logger
        self.metrics = metrics
        self.webhookLimiters = webhookLimiters
    }

    /// Builds the responder the server runs: the router, with the public webhook route in front
    /// of it (`WharfResponder`).
    public func makeResponder() -> WharfResponder {
        let (router, webhook) = makeRouterAndWebhook()
        // The router's middleware is all added before its routes, so this is the chain the route has.
        return WharfResponder(router: router.buildResponder(),
                              webhook: router.middlewares.constructResponder(finalResponder: CallbackResponder(callback: webhook)))
    }

    /// Hummingbird's HTTP/1 server, with webhook calls without a body taken on the event loop
    /// (`makeWebhookLane`).
    public func makeHTTPServer(serverName: String?) -> HTTPServerBuilder {
        .wharf(lane: makeWebhookLane(serverName: serverName))
    }

    /// The lane for webhook calls without a body (`WebhookLane`), unless the server logs at debug
    /// or below: `trigger` logs each join at debug, the lane does not log a join in memory.
    func makeWebhookLane(serverName: String?) -> WebhookLane? {
        guard logger.logLevel > .debug else { return nil }
        return WebhookLane(serverName: serverName) { token, query, headers, address, later in
            self.takeOnLane(token: token, query: query, headers: headers, clientAddress: address, later: later)
        }
    }

    /// Builds the router with its middleware: JSON errors, body limit, bearer auth.
    public func makeRouter() -> Router<WharfRequestContext> {
        makeRouterAndWebhook().router
    }

    private func makeRouterAndWebhook() -> (router: Router<WharfRequestContext>,
                                            webhook: @Sendable (Request, WharfRequestContext) async throws -> Response) {
        let router = Router(context: WharfRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: BearerAuthMiddleware(adminToken: adminToken))
        router.get("/api/health") { request, context -> Response in
            // Docker's HEALTHCHECK and load balancers ask this: a server whose store cannot be used
            // is up but cannot take a single job, so it answers 503.
            let problem = await store.healthProblem()
            healthLog.record(problem, logger: logger)
            guard let problem else {
                return try HealthResponse(status: "ok", version: WharfVersion.current, publicUrl: settings.publicURL)
                    .response(from: request, context: context)
            }
            var response = try HealthResponse(status: "degraded", version: WharfVersion.current, publicUrl: settings.publicURL,
                                              reason: problem.reason).response(from: request, context: context)
            response.status = .serviceUnavailable
            return response
        }
        addEnvironmentRoutes(to: router)
        addStackRoutes(to: router)
        addJobRoutes(to: router)
        let webhook = addWebhookRoutes(to: router)
        addRegistryRoutes(to: router)
        addStaticRoutes(to: router)
        return (router, webhook)
    }

    /// Turns store and compose failures into the contract's HTTP errors.
    static func apiError(_ error: any Error) -> any Error {
        switch error {
        case let error as StoreError:
            switch error.code {
            case "not_found": return APIError(status: .notFound, code: "not_found", message: error.message.prefix(1).uppercased() + error.message.dropFirst() + ".")
            case "name_taken", "environment_in_use", "conflict", "edge_environment", "stack_removing":
                return APIError(status: .conflict, code: error.code, message: error.message)
            case "unauthorized": return APIError(status: .unauthorized, code: "unauthorized", message: error.message)
            default: return APIError(status: .internalServerError, code: "internal", message: "The server could not complete the request.")
            }
        case let error as ComposeError:
            // A plan made on the deploy ahead (`JobRequest.apply(to:env:compose:)`) that compose refuses.
            return APIError(status: .unprocessableContent, code: error.code.rawValue, message: error.message)
        default:
            return error
        }
    }

    /// Runs `body`, mapping store errors to API errors.
    func mapped<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw Self.apiError(error)
        }
    }
}

/// The webhook calls' limits, shared by every way a call comes in: `rate` calls a second per
/// token (bursts of twice that), and 2.5 times that per client address.
struct WebhookLimiters: Sendable {
    let token: RateLimiter
    let address: RateLimiter

    init(rate: Double) {
        self.init(token: .init(rate: rate, burst: max(1, Int(rate * 2))),
                  address: .init(rate: rate * 2.5, burst: max(1, Int(rate * 5))))
    }

    init(token: RateLimiter.Configuration, address: RateLimiter.Configuration) {
        self.token = RateLimiter(token)
        self.address = RateLimiter(address)
    }
}

struct HealthResponse: ResponseEncodable {
    var status: String
    var version: String
    /// The URL webhooks and agents should use (the server's `--public-url`).
    var publicUrl: String
    /// Why the status is `degraded`; left out when it is `ok`.
    var reason: String?
}

/// Encodes JSON responses with RFC 3339 dates, as the contract says.
struct JSONBody<Value: Encodable & Sendable>: ResponseGenerator {
    var value: Value
    var status: HTTPResponse.Status = .ok
    var headers: HTTPFields = [:]

    init(_ value: Value, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) {
        self.value = value
        self.status = status
        self.headers = headers
    }

    /// The body's bytes.
    static func encode(_ value: Value) throws -> Data {
        try sharedEncoder.encode(value)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response.json(ByteBuffer(data: try Self.encode(value)), status: status, headers: headers)
    }
}

/// The API's JSON encoder: sorted keys, unescaped slashes, ISO 8601 dates. Configured once and
/// never changed, so safe to share between requests.
private let sharedEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

extension Response {
    /// A JSON answer whose bytes are already written.
    static func json(_ body: ByteBuffer, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}

/// A request body that refuses a top-level key it does not know rather than dropping it, so that
/// a misspelt or misplaced field (`composeFile`, `environment`) is an error instead of a call that
/// succeeds and changes nothing. Its `CodingKeys` list every field it takes.
protocol ClosedJSONBody: Decodable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

extension Request {
    /// Decodes a JSON body, answering 400 `invalid_json` with the reason when it does not fit.
    func decodeJSON<T: Decodable>(_ type: T.Type, context: WharfRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        return try Self.decodeJSON(type, from: Data(buffer: buffer))
    }

    /// `decodeJSON`, answering 400 `invalid_json` naming the first (by name) top-level key that
    /// `T` does not take, before anything else is checked: such a key is most likely the reason a
    /// required field is missing.
    func decodeJSON<T: ClosedJSONBody>(_ type: T.Type, context: WharfRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer: buffer)
        let known = T.CodingKeys.allCases.map(\.stringValue)
        // A body that is not an object is left to the decoder, which says what is wrong with it.
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            let list = known.dropLast().joined(separator: ", ") + (known.count > 1 ? " and " : "") + (known.last ?? "")
            throw APIError(status: .badRequest, code: "invalid_json",
                           message: "The body has an unknown field '\(unknown.prefix(64))': this route takes \(list).")
        }
        return try Self.decodeJSON(type, from: data)
    }

    private static func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            // Which field, and what it must be: missing, null, of the wrong type, or a value the
            // route does not know (an enum's); the body's whole shape when no field is to blame.
            throw APIError(status: .badRequest, code: "invalid_json", message: APIErrorMiddleware<WharfRequestContext>.describe(error))
        } catch {
            throw APIError(status: .badRequest, code: "invalid_json", message: "The body is not the JSON this route expects.")
        }
    }
}
