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

    /// Credentials for the registries that `images` come from.
    public func credentials(forImages images: [String]) async throws -> [RegistryAuth] {
        let hosts = Set(images.compactMap { image -> String? in
            (try? ImageReference(parsing: image))?.domain
        })
        guard !hosts.isEmpty else { return [] }
        return try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT url, username, password FROM registry").compactMap { row in
                let url: String = row["url"]
                guard hosts.contains(url) else { return nil }
                return RegistryAuth(registry: url, username: row["username"], password: row["password"])
            }
        }
    }
}
