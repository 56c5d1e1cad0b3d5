import Hummingbird

/// The API's router, with the public webhook route looked up by its bytes before the router's trie.
///
/// Hummingbird's trie splits a path into components one `Character` at a time; for a webhook URL
/// (70-odd characters) that was 5 % of the server's CPU for a call that joins a queued job
/// (bench/FINDINGS.md). `POST /api/stacks/webhooks/{token}` with a token of one component goes
/// straight to the same responder the router has for it — the same middleware, the same handler;
/// every other request, and any webhook path in another form (a trailing or doubled `/`), goes
/// through the router as before and ends where it always did.
public struct WharfResponder: HTTPResponder {
    public typealias Context = WharfRequestContext

    let router: RouterResponder<Context>
    /// The webhook call wrapped in the router's middleware.
    let webhook: any HTTPResponder<Context>

    static let webhookPrefix = Array("/api/stacks/webhooks/".utf8)
    static let endpointPath = "/api/stacks/webhooks/{token}"

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .post, let token = Self.webhookToken(in: request.uri.path) else {
            return try await router.respond(to: request, context: context)
        }
        var context = context
        context.coreContext.parameters["token"] = token
        context.coreContext.endpointPath.value = Self.endpointPath
        // As the router does: an error that knows its response answers with it.
        do {
            return try await webhook.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            return try error.response(from: request, context: context)
        }
    }

    /// The token of a path `/api/stacks/webhooks/<token>`, where the token is one non-empty
    /// component; nil for any other path.
    static func webhookToken(in path: some StringProtocol) -> Substring? {
        let path = Substring(path)
        let prefix = webhookPrefix
        guard path.utf8.count > prefix.count, path.utf8.starts(with: prefix) else { return nil }
        let token = path.utf8.dropFirst(prefix.count)
        guard !token.contains(UInt8(ascii: "/")) else { return nil }
        return Substring(token)
    }
}
