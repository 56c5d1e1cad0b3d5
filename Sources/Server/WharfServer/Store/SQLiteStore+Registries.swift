import Foundation
import GRDB
import WharfProtocol

extension SQLiteStore {
    /// Stores registry credentials; the password is never returned.
    public func addRegistry(url: String, username: String, password: String) async throws -> Registry {
        let id = Identifier.make("reg")
        let now = Date()
        return try await db.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM registry WHERE url = ?", arguments: [url]) == true {
                throw StoreError(code: "name_taken", message: "registry \(url) is already configured")
            }
            try db.execute(sql: "INSERT INTO registry (id, url, username, password, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, url, username, password, now.column])
            return Registry(id: id, url: url, username: username, createdAt: now)
        }
    }

    /// Configured registries, without passwords.
    public func registries() async throws -> [Registry] {
        try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT id, url, username, created_at FROM registry ORDER BY url").map {
                Registry(id: $0["id"], url: $0["url"], username: $0["username"], createdAt: Date(column: $0["created_at"])!)
            }
        }
    }

    /// Deletes a registry.
    public func deleteRegistry(id: String) async throws {
        try await db.write { db in
            try db.execute(sql: "DELETE FROM registry WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw StoreError.notFound("registry") }
        }
    }

    func registryAuths(_ db: Database) throws -> [RegistryAuth] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT url, username, password FROM registry")).map { row in
            RegistryAuth(registry: row["url"], username: row["username"], password: row["password"])
        }
    }

    /// The credentials among `auths` for the registries `images` come from, each named by its
    /// canonical host (`RepositoryHint.canonicalHost`: lower case, Docker Hub as docker.io), as
    /// `POST /api/registries` stores it now — a registry stored before that may be spelt otherwise.
    static func credentials(_ auths: [RegistryAuth], for images: [String]) -> [RegistryAuth] {
        guard !auths.isEmpty else { return [] }
        let hosts = Set(images.compactMap { (try? ImageReference(parsing: $0))?.domain }.map(RepositoryHint.canonicalHost))
        return auths.compactMap { auth in
            var auth = auth
            auth.registry = RepositoryHint.canonicalHost(auth.registry)
            return hosts.contains(auth.registry) ? auth : nil
        }
    }
}
