import Hummingbird
import Logging

/// Requires `Authorization: Bearer <admin token>` on every route that is not public.
///
/// Public (no token needed), by default — see `BearerAuth.isPublic(_:path:)`:
/// - `GET`/`HEAD /api/health`, `POST /api/agents/enrol`, `POST /api/stacks/webhooks/{token}`;
/// - everything outside `/api/` (the web UI's static files, `/install-agent.sh`), except `/metrics`.
///
/// Anything else without the right token is answered 401 `unauthorized` with
/// `WWW-Authenticate: Bearer`. The comparison takes the same time whatever the presented
/// token is, and neither token is ever logged. Unknown `/api/` paths also answer 401 to a
/// caller without the token, so the route table is not revealed to strangers.
public struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whether a request may pass without the token: method and raw request path.
    public typealias PublicRoutePredicate = @Sendable (HTTPRequest.Method, String) -> Bool

    private let adminToken: [UInt8]
    private let isPublic: PublicRoutePredicate

    /// Creates the middleware.
    /// - Parameters:
    ///   - adminToken: the server's admin API token; must not be empty.
    ///   - isPublic: which requests need no token; the contract's list by default.
    public init(adminToken: String, isPublic: @escaping PublicRoutePredicate = BearerAuth.isPublic) {
        precondition(!adminToken.isEmpty, "the admin token must not be empty")
        self.adminToken = Array(adminToken.utf8)
        self.isPublic = isPublic
    }

    /// Lets public requests and requests with the admin token through; answers 401 otherwise.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if self.isPublic(request.method, request.uri.path) {
            return try await next(request, context)
        }
        guard
            let header = request.headers[.authorization],
            let presented = BearerAuth.bearerToken(fromAuthorization: header),
            BearerAuth.constantTimeEquals(presented.utf8, self.adminToken)
        else {
            // The path of a non-public route carries no secret; the header is never logged.
            context.logger.debug(
                "Rejected request without a valid admin token",
                metadata: ["http.method": "\(request.method)", "http.path": "\(request.uri.path)"]
            )
            throw APIError.unauthorized
        }
        return try await next(request, context)
    }
}

/// Helpers of `BearerAuthMiddleware`, free of its generic context.
public enum BearerAuth {
    /// The contract's public routes.
    ///
    /// The path is split on `/` with empty components dropped, exactly as Hummingbird's router
    /// does, so `//api//stacks` cannot pass as "outside `/api/`" and still reach `/api/stacks`.
    /// `api` and `metrics` are matched case-insensitively (in case the router is made
    /// case-insensitive); the public `/api/` routes only in their exact spelling.
    public static func isPublic(_ method: HTTPRequest.Method, path: String) -> Bool {
        // Runs on every request: the path's bytes are read in place, nothing is split or copied.
        var path = path
        return path.withUTF8 { bytes -> Bool in
            // The first four non-empty components, and how many there are.
            var parts: [Range<Int>] = []
            parts.reserveCapacity(4)
            var count = 0
            var start = -1
            for index in 0...bytes.count {
                if index == bytes.count || bytes[index] == UInt8(ascii: "/") {
                    if start >= 0 {
                        if count < 4 { parts.append(start..<index) }
                        count += 1
                        start = -1
                    }
                } else if start < 0 {
                    start = index
                }
            }
            func component(_ index: Int, is name: StaticString, ignoringCase: Bool = false) -> Bool {
                let range = parts[index]
                guard range.count == name.utf8CodeUnitCount else { return false }
                let expected = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
                for (offset, byte) in bytes[range].enumerated() {
                    // ASCII letters only: the names are ASCII, and no other character lowercases to one of theirs.
                    let folded = ignoringCase && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                    if folded != expected[offset] { return false }
                }
                return true
            }
            guard count > 0 else {
                return true  // "/": the web UI
            }
            if count == 1 && component(0, is: "metrics", ignoringCase: true) {
                return false
            }
            guard component(0, is: "api", ignoringCase: true) else {
                return true  // static files of the web UI, /install-agent.sh
            }
            switch (method, count) {
            case (.get, 2), (.head, 2):
                return component(1, is: "health")
            case (.post, 3):
                return component(1, is: "agents") && component(2, is: "enrol")
            case (.post, 4):
                return component(1, is: "stacks") && component(2, is: "webhooks")
            default:
                return false
            }
        }
    }

    /// The token of an `Authorization: Bearer <token>` header value, or nil for another scheme.
    /// The scheme is case-insensitive (RFC 9110); surrounding whitespace is ignored.
    public static func bearerToken(fromAuthorization header: String) -> Substring? {
        let value = header.drop { $0 == " " || $0 == "\t" }
        guard let space = value.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
            return nil
        }
        guard value[..<space].lowercased() == "bearer" else {
            return nil
        }
        var token = value[space...].drop { $0 == " " || $0 == "\t" }
        while let last = token.last, last == " " || last == "\t" {
            token = token.dropLast()
        }
        return token.isEmpty ? nil : token
    }

    /// Compares a presented secret with the expected one in time that depends only on the
    /// expected secret's length, never on where the two first differ.
    public static func constantTimeEquals(_ presented: some Collection<UInt8>, _ expected: [UInt8]) -> Bool {
        let presented = Array(presented)
        var difference = UInt(bitPattern: presented.count ^ expected.count)
        for index in expected.indices {
            let byte = index < presented.count ? presented[index] : 0
            difference |= UInt(byte ^ expected[index])
        }
        return difference == 0
    }
}
