import Foundation
import Hummingbird

extension API {
    struct AddRegistry: Decodable { var url: String; var username: String; var password: String }
    struct RegistryBody: Encodable, Sendable { var registry: Registry }
    struct RegistryList: Encodable, Sendable { var registries: [Registry] }

    /// `host[:port]`, as image references name a registry.
    static func isValidRegistryHost(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 255, !text.contains("/"), !text.contains("://") else { return false }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty,
              host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else { return false }
        if parts.count == 2 { guard let port = Int(parts[1]), (1...65535).contains(port) else { return false } }
        return true
    }

    func addRegistryRoutes(to router: Router<WharfRequestContext>) {
        router.post("/api/registries") { request, context in
            let body = try await request.decodeJSON(AddRegistry.self, context: context)
            var url = body.url.trimmingCharacters(in: .whitespaces)
            for scheme in ["https://", "http://"] where url.lowercased().hasPrefix(scheme) { url.removeFirst(scheme.count) }
            if url.hasSuffix("/") { url.removeLast() }
            // `docker login`'s own key for Docker Hub is https://index.docker.io/v1/.
            for version in ["/v1", "/v2"] where url.hasSuffix(version) { url.removeLast(version.count) }
            guard Self.isValidRegistryHost(url) else {
                throw APIError(status: .badRequest, code: "invalid_registry",
                               message: "url must be a registry host as images name it, such as registry.example.com or 127.0.0.1:5000.")
            }
            guard !body.username.isEmpty, !body.password.isEmpty else {
                throw APIError(status: .badRequest, code: "invalid_registry", message: "username and password must not be empty.")
            }
            // As images name it: lower case, and Docker Hub under any of its names is docker.io, so
            // that `index.docker.io` serves `myorg/app:1` and one registry cannot be added twice.
            url = RepositoryHint.canonicalHost(url)
            let registry = try await mapped { try await store.addRegistry(url: url, username: body.username, password: body.password) }
            context.logger.info("registry added", metadata: ["registry": "\(url)"])
            return JSONBody(RegistryBody(registry: registry), status: .created)
        }
        router.get("/api/registries") { _, _ in
            JSONBody(RegistryList(registries: try await mapped { try await store.registries() }))
        }
        router.delete("/api/registries/{id}") { _, context in
            let id = try context.parameters.require("id")
            try await mapped { try await store.deleteRegistry(id: id) }
            return Response(status: .noContent)
        }
        router.get("/metrics") { _, _ in
            let counts = try await mapped { try await store.jobCounts() }
            let environmentCount = try await mapped { try await store.environments().count }
            let text = metrics.render(jobCounts: counts, connectedAgents: await dispatcher.connectedEnvironments().count,
                                      environmentCount: environmentCount)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}
