import Hummingbird
import Logging
import NIOCore

/// Turns every error thrown below it into an `APIError`, so every error response has the
/// contract's shape `{"error": {"code", "message"}}`.
///
/// - `APIError` passes through unchanged.
/// - Hummingbird's `HTTPError` keeps its status and headers: 404 (also for unknown routes)
///   becomes `not_found`; the 400s that `Request.decode(as:context:)` throws for a body that
///   does not decode become `invalid_json` with Hummingbird's message; other statuses get a
///   code from a small fixed table.
/// - `DecodingError` (a route decoding JSON itself) becomes 400 `invalid_json` with a message
///   naming the field; `NIOTooManyBytesError` (from `collect(upTo:)`) becomes 413 `payload_too_large`.
/// - Anything else is logged at error level with its full description and answered as
///   500 `internal`, whose message never carries the cause. The logged path has a webhook
///   token replaced by `<redacted>` (`loggablePath(_:)`): the token is the webhook's secret.
///
/// Add it to the router before any other Wharf middleware and before the routes, so it also
/// wraps the router's not-found responder:
/// ```swift
/// router.add(middleware: APIErrorMiddleware())
/// router.add(middleware: BodyLimitMiddleware())
/// router.add(middleware: BearerAuthMiddleware(adminToken: token))
/// ```
/// It throws the mapped `APIError` rather than returning a response, so that Hummingbird's
/// metrics and tracing middlewares placed outside it still see a failed request with the right status.
public struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    /// Runs the rest of the chain and maps any error it throws to an `APIError`.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch {
            let mapped = Self.map(error, request: request, context: context)
            if mapped.status.kind == .serverError {
                context.logger.error(
                    "Request failed",
                    metadata: [
                        "http.method": "\(request.method)",
                        "http.path": "\(Self.loggablePath(request.uri.path))",
                        "error": "\(String(reflecting: error))",
                    ]
                )
            }
            throw mapped
        }
    }

    /// `path` as it may be logged: for `/api/stacks/webhooks/<token>` everything after `webhooks/`
    /// is `<redacted>`, since the token is all a caller needs to redeploy the stack.
    ///
    /// Components are compared as the router splits them (empty ones dropped, so `//api//stacks`
    /// routes, and is redacted, like `/api/stacks`).
    static func loggablePath(_ path: String) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard components.count > 3, components[0] == "api", components[1] == "stacks", components[2] == "webhooks" else {
            return path
        }
        return "/api/stacks/webhooks/<redacted>"
    }

    /// Maps an error that is not an `APIError` to the `APIError` answered for it.
    static func map(_ error: any Error, request: Request, context: Context) -> APIError {
        switch error {
        case let error as HTTPError:
            return self.map(httpError: error)
        case is NIOTooManyBytesError:
            return .payloadTooLarge()
        case let error as DecodingError:
            return .invalidJSON(Self.describe(error))
        case let error as any HTTPResponseError:
            // Some other framework error (e.g. one that adds CORS headers): keep its status and
            // headers, but not its body, whose shape is not ours.
            var headers: HTTPFields = [:]
            if let response = try? error.response(from: request, context: context) {
                headers = response.headers
                headers[.contentType] = nil
                headers[.contentLength] = nil
            }
            var mapped = self.map(httpError: HTTPError(error.status))
            mapped.headers.append(contentsOf: headers)
            return mapped
        default:
            return .internal
        }
    }

    static func map(httpError error: HTTPError) -> APIError {
        let status = error.status
        if status.kind == .serverError {
            return APIError(status: status, code: "internal", message: APIError.internal.message, headers: error.headers)
        }
        let code: String
        switch status.code {
        case 400: code = Self.isDecodeMessage(error.body) ? "invalid_json" : "bad_request"
        case 401: code = "unauthorized"
        case 403: code = "forbidden"
        case 404: code = "not_found"
        case 405: code = "method_not_allowed"
        case 409: code = "conflict"
        case 413: code = "payload_too_large"
        case 415: code = "unsupported_media_type"
        case 416: code = "range_not_satisfiable"
        case 422: code = "unprocessable_content"
        case 429: code = "rate_limited"
        default: code = "bad_request"
        }
        let message: String
        switch (status.code, error.body) {
        case (404, _): message = APIError.notFound.message
        case (413, _): message = APIError.payloadTooLarge().message
        case (_, .some(let body)) where !body.isEmpty: message = body
        default: message = "\(status.reasonPhrase)."
        }
        return APIError(status: status, code: code, message: message, headers: error.headers)
    }

    /// Whether an `HTTPError(.badRequest)` message is one that `Request.decode(as:context:)`
    /// in Hummingbird 2.28 makes from a `DecodingError`.
    static func isDecodeMessage(_ message: String?) -> Bool {
        guard let message else { return false }
        return message.hasPrefix("The given data was not valid input")
            || (message.hasPrefix("Coding key `") && message.hasSuffix("` not found."))
            || message.hasPrefix("Value not found for `")
            || message.hasPrefix("Type mismatch for `")
    }

    /// A human sentence for a JSON decoding failure, naming the field when there is one.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            var text = ""
            for key in codingPath + (last.map { [$0] } ?? []) {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "The request body is not valid JSON."
        case .dataCorrupted(let context):
            return "The field `\(path(context.codingPath))` has an invalid value."
        case .keyNotFound(let key, let context):
            return "The field `\(path(context.codingPath, key))` is missing."
        case .valueNotFound(_, let context):
            return "The field `\(path(context.codingPath))` must not be null."
        case .typeMismatch(let type, let context):
            let field = context.codingPath.isEmpty ? "The request body" : "The field `\(path(context.codingPath))`"
            return "\(field) must be \(Self.describe(type))."
        @unknown default:
            return "The request body is not valid JSON for this route."
        }
    }

    static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        switch name {
        case "String", "Substring": return "a string"
        case "Bool": return "true or false"
        case "Double", "Float", "Decimal": return "a number"
        case _ where name.hasPrefix("Int") || name.hasPrefix("UInt"): return "an integer"
        case _ where name.hasPrefix("Dictionary"): return "an object"
        case _ where name.hasPrefix("Array"): return "an array"
        default: return "a value of the right type"
        }
    }
}
