import Hummingbird

/// The request body size limit shared by the server's routes.
public enum BodyLimit {
    /// 1 MiB: the contract's limit for every request body.
    public static let defaultLimit = 1 << 20
}

/// Answers 413 `payload_too_large` for a request body over `limit` bytes.
///
/// A `Content-Length` over the limit is refused before the route runs and before any of the
/// body is read. A body without a length (chunked) is wrapped so that reading it throws
/// `APIError.payloadTooLarge` as soon as more than `limit` bytes have arrived, whoever reads
/// it: `request.body.collect(upTo:)`, `request.decode(as:context:)` or a stream. Routes may
/// keep passing `context.maxUploadSize` (2 MiB by default) to `collect(upTo:)`: this limit is
/// reached first.
public struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The largest body accepted, in bytes.
    public let limit: Int

    /// Creates the middleware. - Parameter limit: the largest body accepted, 1 MiB by default.
    public init(limit: Int = BodyLimit.defaultLimit) {
        precondition(limit >= 0, "the body limit must not be negative")
        self.limit = limit
    }

    /// Refuses a declared length over the limit; limits the body stream otherwise.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let declared = request.headers[.contentLength] {
            // NIO's HTTP parser has already rejected a malformed Content-Length on a live
            // connection; a value too large for Int is over any limit.
            guard let length = Int(declared), length <= self.limit else {
                throw APIError.payloadTooLarge(limit: self.limit)
            }
            return try await next(request, context)
        }
        var request = request
        request.body = RequestBody(asyncSequence: LimitedBody(base: request.body, limit: self.limit))
        return try await next(request, context)
    }
}

/// A request body that throws `APIError.payloadTooLarge` once more than `limit` bytes were read.
struct LimitedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: RequestBody
    let limit: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let limit: Int
        var count = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let buffer = try await self.base.next() else {
                return nil
            }
            self.count += buffer.readableBytes
            if self.count > self.limit {
                throw APIError.payloadTooLarge(limit: self.limit)
            }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), limit: self.limit)
    }
}
