import Foundation
import GRDB
import WharfProtocol

extension SQLiteStore {
    /// A stack row as the API shows it; `services: false` skips decoding them (left empty).
    static func stack(from row: Row, publicURL: String, services: Bool = true) -> Stack {
        let token: String? = row["webhook_token"]
        return Stack(
            id: row["id"], name: row["name"], environmentId: row["environment_id"], compose: row["compose"],
            env: JSONColumn.decode([String: String].self, row["env"]) ?? [:],
            healthTimeout: row["health_timeout"] ?? Stack.defaultHealthTimeout,
            status: StackStatus(rawValue: row["status"]) ?? .deploying,
            webhook: token.map { StackWebhook(url: "\(publicURL)/api/stacks/webhooks/\($0)",
                                              createdAt: Date(column: row["webhook_created_at"]) ?? Date()) },
            lastJobId: row["last_job_id"],
            services: services ? JSONColumn.decode([StackService].self, row["services"]) ?? [] : [],
            createdAt: Date(column: row["created_at"])!, updatedAt: Date(column: row["updated_at"])!
        )
    }

    /// Creates a stack and queues its first deploy, in one transaction. `healthTimeout`: seconds,
    /// nil for the default (stored as NULL, `Stack.defaultHealthTimeout`).
    public func createStack(name: String, environmentId: String, compose: String, env: [String: String], healthTimeout: Int? = nil,
                            plan: [PlannedService], trigger: JobTrigger, publicURL: String) async throws -> (Stack, Job) {
        let id = Identifier.make("stk")
        let now = Date()
        return try await db.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM environment WHERE id = ?", arguments: [environmentId]) == true else {
                throw StoreError.notFound("environment")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM stack WHERE environment_id = ? AND name = ?", arguments: [environmentId, name]) == true {
                throw StoreError(code: "name_taken", message: "a stack named '\(name)' already exists in this environment")
            }
            try db.execute(sql: """
                INSERT INTO stack (id, name, environment_id, compose, env, health_timeout, status, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 'deploying', ?, ?)
                """, arguments: [id, name, environmentId, compose, JSONColumn.encode(env), healthTimeout, now.column, now.column])
            var stackRow = try Row.fetchOne(db, sql: "SELECT * FROM stack WHERE id = ?", arguments: [id])!
            let job = try self.enqueue(db, stackRow: stackRow, request: JobRequest(kind: .deploy, plan: plan, trigger: trigger), now: now)
            stackRow = try Row.fetchOne(db, sql: "SELECT * FROM stack WHERE id = ?", arguments: [id])!
            return (Self.stack(from: stackRow, publicURL: publicURL), job)
        }
    }

    /// One stack.
    public func stack(id: String, publicURL: String) async throws -> Stack {
        try await db.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM stack WHERE id = ?", arguments: [id]) else {
                throw StoreError.notFound("stack")
            }
            return Self.stack(from: row, publicURL: publicURL)
        }
    }

    /// Stacks, by name, optionally of one environment.
    public func stacks(environmentId: String?, publicURL: String) async throws -> [Stack] {
        try await db.read { db in
            let rows = if let environmentId {
                try Row.fetchAll(db, sql: "SELECT * FROM stack WHERE environment_id = ? ORDER BY name", arguments: [environmentId])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM stack ORDER BY name, environment_id")
            }
            return rows.map { Self.stack(from: $0, publicURL: publicURL) }
        }
    }
}

extension SQLiteStore {
    /// Replaces a stack's compose file and env (and its health timeout, unless `healthTimeout` is
    /// nil) and queues its redeploy, in one transaction; the redeploy runs with the new timeout.
    ///
    /// Editing the compose file drops pinned images: the user's file says again what runs. The edit
    /// raises the stack's revision, so that jobs queued before it, when they succeed, do not write
    /// their older definition over it (`applyToStack`).
    public func updateStack(id: String, compose: String, env: [String: String], healthTimeout: Int? = nil, clearPins: Bool,
                            request: JobRequest) async throws -> Job {
        let now = Date()
        return try await db.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM stack WHERE id = ?", arguments: [id]) == true else {
                throw StoreError.notFound("stack")
            }
            try db.execute(sql: """
                UPDATE stack SET compose = ?, env = ?, health_timeout = COALESCE(?, health_timeout), updated_at = ?,
                    revision = revision + 1\(clearPins ? ", pins = '{}'" : "") WHERE id = ?
                """, arguments: [compose, JSONColumn.encode(env), healthTimeout, now.column, id])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM stack WHERE id = ?", arguments: [id])!
            return try self.enqueue(db, stackRow: row, request: request, now: now)
        }
    }
}

extension SQLiteStore {
    /// Deletes a stack without asking its agent — for a node that is gone for good, whose remove
    /// job could never run. Its unfinished jobs end `failed` with `stack_forgotten` (none stays
    /// queued or dispatched forever), the calls joined in memory are counted first, and the row
    /// goes, with its webhook and registry event ids; its containers, if the node comes back, are
    /// left as they are. One transaction. Returns the ids of the jobs it ended.
    public func forgetStack(id: String) async throws -> [String] {
        let now = Date()
        return try await db.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM stack WHERE id = ?", arguments: [id]) == true else {
                throw StoreError.notFound("stack")
            }
            try self.foldJoins(db, self.joinable.take(stackId: id))
            let error = JobError(code: "stack_forgotten",
                                 message: "The stack was deleted without its agent (forget); this job was not run.")
            let ended = try String.fetchAll(db, sql: """
                UPDATE job SET state = 'failed', finished_at = ?, error = ?
                WHERE stack_id = ? AND state NOT IN \(Self.finalStates) RETURNING id
                """, arguments: [now.column, JSONColumn.encode(error), id])
            try db.execute(sql: "DELETE FROM stack WHERE id = ?", arguments: [id])
            return ended.sorted()
        }
    }
}

extension SQLiteStore {
    /// Sets (or with nil clears) a stack's webhook token; an edge environment refuses. With
    /// `keepExisting`, a stack that has a token keeps it (and `changed` is false).
    public func setWebhookToken(stackId: String, token: String?, publicURL: String) async throws -> Stack {
        try await setWebhookToken(stackId: stackId, token: token, keepExisting: false, publicURL: publicURL).stack
    }

    public func setWebhookToken(stackId: String, token: String?, keepExisting: Bool, publicURL: String) async throws -> (stack: Stack, changed: Bool) {
        let now = Date()
        return try await db.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT s.*, e.type AS environment_type FROM stack s JOIN environment e ON e.id = s.environment_id WHERE s.id = ?
                """, arguments: [stackId]) else {
                throw StoreError.notFound("stack")
            }
            if token != nil, (row["environment_type"] as String?) == EnvironmentType.edge.rawValue {
                throw StoreError(code: "edge_environment", message: "edge")
            }
            if keepExisting, (row["webhook_token"] as String?) != nil {
                return (Self.stack(from: row, publicURL: publicURL), false)
            }
            try db.execute(sql: "UPDATE stack SET webhook_token = ?, webhook_created_at = ? WHERE id = ?",
                           arguments: [token, token == nil ? nil : now.column, stackId])
            return (Self.stack(from: try Row.fetchOne(db, sql: "SELECT * FROM stack WHERE id = ?", arguments: [stackId])!, publicURL: publicURL), true)
        }
    }

    /// `stack(webhookToken:publicURL:)` when the cache has it (and it was made with this public
    /// URL), without reading the store; nil otherwise.
    public func cachedStack(webhookToken: String, publicURL: String) -> (stack: Stack, pins: [String: String])? {
        guard let target = webhookTargets.lookup(webhookToken), target.publicURL == publicURL else { return nil }
        return (target.stack, target.pins)
    }

    /// The stack a webhook token belongs to, if any, with its pinned images: from memory when the
    /// token was used lately and its stack has not changed since (`WebhookTargetCache`), otherwise in
    /// one read. The stack comes without `services` and `lastJobId`, and its `status` and `updatedAt`
    /// may be older than the row's; everything a trigger plans with is current.
    public func stack(webhookToken: String, publicURL: String) async throws -> (stack: Stack, pins: [String: String])? {
        if let cached = cachedStack(webhookToken: webhookToken, publicURL: publicURL) { return cached }
        let generation = webhookTargets.generation
        let target = try readInPlace { db in
            try Row.readFirst(db.cachedStatement(sql: "SELECT rowid AS row_id, * FROM stack WHERE webhook_token = ?"),
                              arguments: [webhookToken]) { row in
                // Services and last job are not needed to plan, nor worth decoding or keeping.
                var stack = Self.stack(from: row, publicURL: publicURL, services: false)
                stack.lastJobId = nil
                return WebhookTargetCache.Target(rowID: row["row_id"], stack: stack,
                                                 pins: JSONColumn.decode([String: String].self, row["pins"]) ?? [:],
                                                 publicURL: publicURL)
            }
        }
        guard let target else { return nil }
        webhookTargets.fill(webhookToken, target, readAt: generation)
        return (target.stack, target.pins)
    }

    /// One SELECT on the calling thread (GRDB's blocking read: a reader connection runs it inline,
    /// without the hop to its queue and back), outside a transaction: a single statement reads one
    /// snapshot by itself, and BEGIN and COMMIT around it were two statements more per call.
    /// `body` must run one statement only.
    func readInPlace<T>(_ body: (Database) throws -> T) throws -> T {
        try db.unsafeRead(body)
    }
}

extension SQLiteStore {
    /// Images pinned on a stack by earlier successful triggers, by service.
    public func pins(stackId: String) async throws -> [String: String] {
        try await db.read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT pins FROM stack WHERE id = ?", arguments: [stackId]) else {
                throw StoreError.notFound("stack")
            }
            return JSONColumn.decode([String: String].self, text) ?? [:]
        }
    }
}
