import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An error answered to an HTTP client as `{"error": {"code": "...", "message": "..."}}`.
///
/// Every error response of the API has this shape (see `APIErrorMiddleware` for errors
/// that are not `APIError`s). `code` is a stable snake_case identifier clients may match on;
/// `message` is a human sentence and never carries internals such as file paths, SQL or
/// stack traces — log those instead and answer `APIError.internal`.
public struct APIError: Error, Sendable, Hashable {
    /// HTTP status of the response.
    public var status: HTTPResponse.Status
    /// Stable snake_case code, e.g. `not_found`.
    public var code: String
    /// Human sentence explaining what went wrong and, where it helps, what to do.
    public var message: String
    /// Extra response headers, e.g. `Retry-After` or `WWW-Authenticate`.
    public var headers: HTTPFields

    /// Creates an error with an explicit status, code and message.
    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }
}

// MARK: - The contract's error codes

extension APIError {
    /// 401 `unauthorized`: a management route was called without the admin bearer token.
    public static var unauthorized: APIError {
        APIError(
            status: .unauthorized,
            code: "unauthorized",
            message: "This route needs the header `Authorization: Bearer <admin token>` with the server's admin token.",
            headers: [.wwwAuthenticate: #"Bearer realm="wharf""#]
        )
    }

    /// 404 `not_found` with a generic message.
    ///
    /// Webhook triggers answer exactly this for an unknown, disabled or rotated token, so the
    /// response never tells which of the three it was.
    public static var notFound: APIError {
        APIError(status: .notFound, code: "not_found", message: "Not found.")
    }

    /// 404 `not_found` naming what was looked for, e.g. `notFound("No stack with id 'abc'.")`.
    public static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: message)
    }

    /// 409 `name_taken`: the name of an environment, or of a stack within its environment, is in use.
    /// - Parameters:
    ///   - kind: what was being named, e.g. `"environment"` or `"stack"`.
    ///   - name: the name asked for.
    public static func nameTaken(kind: String, name: String) -> APIError {
        APIError(
            status: .conflict,
            code: "name_taken",
            message: "The \(kind) name '\(name)' is already taken; choose another name."
        )
    }

    /// 409 `environment_in_use`: an environment cannot be deleted while stacks are on it.
    public static func environmentInUse(stackCount: Int) -> APIError {
        let stacks = stackCount == 1 ? "1 stack" : "\(stackCount) stacks"
        return APIError(
            status: .conflict,
            code: "environment_in_use",
            message: "The environment still has \(stacks) on it; delete them first."
        )
    }

    /// 409 `edge_environment`: webhooks cannot be created for stacks on edge environments.
    public static var edgeEnvironment: APIError {
        APIError(
            status: .conflict,
            code: "edge_environment",
            message: "Webhooks are not available on edge environments: an edge agent has no permanent "
                + "connection to the server, so a webhook could never reach it."
        )
    }

    /// 422 `invalid_compose`: the compose file or its interpolation template is invalid.
    /// - Parameter message: names the problem, e.g. "services.web.image: ${TAG:?} is required".
    public static func invalidCompose(_ message: String) -> APIError {
        APIError(status: .unprocessableContent, code: "invalid_compose", message: message)
    }

    /// 400 with a specific snake_case `code`, e.g. `badRequest(code: "invalid_name", message: ...)`.
    public static func badRequest(code: String, message: String) -> APIError {
        APIError(status: .badRequest, code: code, message: message)
    }

    /// 400 `invalid_json`: the request body is not the JSON the route expects.
    public static func invalidJSON(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_json", message: message)
    }

    /// 413 `payload_too_large`: the request body is over `limit` bytes.
    public static func payloadTooLarge(limit: Int = BodyLimit.defaultLimit) -> APIError {
        APIError(
            status: .contentTooLarge,
            code: "payload_too_large",
            message: "The request body is larger than the limit of \(Self.describeBytes(limit))."
        )
    }

    /// 429 `rate_limited` with a `Retry-After` header of `retryAfter` seconds (at least 1).
    public static func rateLimited(retryAfter: Int) -> APIError {
        let seconds = max(1, retryAfter)
        return APIError(
            status: .tooManyRequests,
            code: "rate_limited",
            message: "Too many requests; retry in \(seconds) second\(seconds == 1 ? "" : "s").",
            headers: [.retryAfter: String(seconds)]
        )
    }

    /// 500 `internal`: something failed on the server. The message is deliberately generic;
    /// log the cause before answering this.
    public static var `internal`: APIError {
        APIError(
            status: .internalServerError,
            code: "internal",
            message: "The server failed to handle the request; the cause is in the server's log."
        )
    }

    static func describeBytes(_ count: Int) -> String {
        if count >= 1 << 20, count % (1 << 20) == 0 { return "\(count >> 20) MiB" }
        if count >= 1 << 10, count % (1 << 10) == 0 { return "\(count >> 10) KiB" }
        return "\(count) bytes"
    }
}

// MARK: - HTTP response

extension APIError: HTTPResponseError {
    /// The JSON body, `{"error": {"code", "message"}}`.
    struct Body: Codable, Equatable {
        struct Detail: Codable, Equatable {
            var code: String
            var message: String
        }

        var error: Detail
    }

    /// Renders the error as a JSON response with this error's status and extra headers.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(Body(error: .init(code: self.code, message: self.message)))
        var headers: HTTPFields = [
            .contentType: "application/json; charset=utf-8",
            .contentLength: String(data.count),
        ]
        for field in self.headers where field.name != .contentType && field.name != .contentLength {
            headers.append(field)
        }
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension APIError: CustomStringConvertible {
    /// `"404 not_found: Not found."` — for logs.
    public var description: String {
        "\(self.status.code) \(self.code): \(self.message)"
    }
}
