import Foundation
import Hummingbird

extension API {
    /// The web UI's static files (public; the UI signs in with the admin token itself) and the
    /// agent install script, filled in with this server's public URL.
    func addStaticRoutes(to router: Router<WharfRequestContext>) {
        if let root = Bundle.module.resourceURL?.appendingPathComponent("ui").path {
            router.add(middleware: FileMiddleware(root, searchForIndexHtml: true))
        }
        router.get("/install-agent.sh") { _, _ in
            guard let url = Bundle.module.url(forResource: "install-agent", withExtension: "sh"),
                  let template = try? String(contentsOf: url, encoding: .utf8) else {
                throw APIError.notFound
            }
            let script = template.replacingOccurrences(of: "@WHARF_SERVER@", with: settings.publicURL)
            return Response(status: .ok, headers: [.contentType: "text/x-shellscript; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: script)))
        }
    }
}
