import Foundation
import GRDB
import WharfProtocol

extension SQLiteStore {
    static func environment(from row: Row) -> Environment {
        let key: String? = row["agent_key"]
        return Environment(
            id: row["id"], name: row["name"],
            type: EnvironmentType(rawValue: row["type"]) ?? .agent,
            status: key == nil ? .pending : .disconnected,
            lastSeenAt: Date(column: row["last_seen_at"]),
            agent: JSONColumn.decode(AgentInfo.self, row["agent_info"]),
            createdAt: Date(column: row["created_at"])!
        )
    }

    /// Creates an environment and its first join token.
    public func createEnvironment(name: String, type: EnvironmentType, joinTokenTTL: TimeInterval) async throws -> (Environment, String) {
        let id = Identifier.make("env")
        let token = Identifier.make("join")
        let now = Date()
        return try await db.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM environment WHERE name = ?", arguments: [name]) == true {
                throw StoreError(code: "name_taken", message: "an environment named '\(name)' already exists")
            }
            try db.execute(sql: "INSERT INTO environment (id, name, type, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [id, name, type.rawValue, now.column])
            try db.execute(sql: "INSERT INTO join_token (token, environment_id, expires_at) VALUES (?, ?, ?)",
                           arguments: [token, id, now.addingTimeInterval(joinTokenTTL).column])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM environment WHERE id = ?", arguments: [id])!
            return (Self.environment(from: row), token)
        }
    }

    /// Issues a new single-use join token for an environment.
    public func createJoinToken(environmentId: String, ttl: TimeInterval) async throws -> String {
        let token = Identifier.make("join")
        let now = Date()
        return try await db.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM environment WHERE id = ?", arguments: [environmentId]) == true else {
                throw StoreError.notFound("environment")
            }
            try db.execute(sql: "INSERT INTO join_token (token, environment_id, expires_at) VALUES (?, ?, ?)",
                           arguments: [token, environmentId, now.addingTimeInterval(ttl).column])
            return token
        }
    }

    /// All environments, by name.
    public func environments() async throws -> [Environment] {
        try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM environment ORDER BY name").map(Self.environment(from:))
        }
    }

    /// One environment.
    public func environment(id: String) async throws -> Environment {
        try await db.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM environment WHERE id = ?", arguments: [id]) else {
                throw StoreError.notFound("environment")
            }
            return Self.environment(from: row)
        }
    }

    /// Deletes an environment that has no stacks.
    public func deleteEnvironment(id: String) async throws {
        try await db.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM environment WHERE id = ?", arguments: [id]) == true else {
                throw StoreError.notFound("environment")
            }
            let stacks = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM stack WHERE environment_id = ?", arguments: [id]) ?? 0
            guard stacks == 0 else {
                throw StoreError(code: "environment_in_use", message: "environment has \(stacks) stack(s); remove them first")
            }
            try db.execute(sql: "DELETE FROM join_token WHERE environment_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM environment WHERE id = ?", arguments: [id])
        }
    }

    /// Spends a join token: binds the agent's public key to the token's environment.
    ///
    /// A bad, used or expired token is `unauthorized`, with the same message whatever the reason.
    public func enrol(joinToken: String, publicKey: String, hostname: String, version: String) async throws -> Environment {
        let now = Date()
        return try await db.write { db in
            let denied = StoreError(code: "unauthorized", message: "the join token is unknown, used or expired")
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM join_token WHERE token = ?", arguments: [joinToken]) else {
                throw denied
            }
            let used: Double? = row["used_at"]
            let expires: Double = row["expires_at"]
            guard used == nil, expires > now.column else { throw denied }
            let environmentId: String = row["environment_id"]
            if let other = try String.fetchOne(db, sql: "SELECT id FROM environment WHERE agent_key = ?", arguments: [publicKey]),
               other != environmentId {
                throw StoreError(code: "conflict", message: "this agent key is already enrolled in another environment")
            }
            try db.execute(sql: "UPDATE join_token SET used_at = ? WHERE token = ?", arguments: [now.column, joinToken])
            let info = AgentInfo(hostname: hostname, version: version, dockerVersion: "", composeVersion: "")
            try db.execute(sql: "UPDATE environment SET agent_key = ?, agent_info = ? WHERE id = ?",
                           arguments: [publicKey, JSONColumn.encode(info), environmentId])
            return Self.environment(from: try Row.fetchOne(db, sql: "SELECT * FROM environment WHERE id = ?", arguments: [environmentId])!)
        }
    }

    /// Every enrolled agent key (Z85) with its environment id and type, for the ZAP handler.
    public func agentKeys() async throws -> [String: (environmentId: String, type: EnvironmentType)] {
        try await db.read { db in
            var keys: [String: (environmentId: String, type: EnvironmentType)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, type, agent_key FROM environment WHERE agent_key IS NOT NULL") {
                keys[row["agent_key"]] = (row["id"], EnvironmentType(rawValue: row["type"]) ?? .agent)
            }
            return keys
        }
    }

    /// Records that these environments' agents were heard from now, in one statement: with 10,000
    /// agents, an UPDATE each held the writer (and every webhook behind it) for a noticeable time.
    public func touchEnvironments(ids: [String], at date: Date) async throws {
        guard !ids.isEmpty else { return }
        var list = JSONWriter(capacity: ids.count * 32)
        list.raw("[")
        for (index, id) in ids.enumerated() {
            if index > 0 { list.raw(",") }
            list.string(id)
        }
        list.raw("]")
        let idList = list.text
        try await db.write { db in
            try db.cachedStatement(sql: "UPDATE environment SET last_seen_at = ? WHERE id IN (SELECT value FROM json_each(?))")
                .execute(arguments: [date.column, idList])
        }
    }

}
