import Foundation
import GRDB
import Synchronization
import WharfProtocol

/// The embedded store: one SQLite file (WAL) through GRDB.
public final class SQLiteStore: Sendable {
    let db: DatabasePool
    /// Job requests waiting for the next group commit (see `enqueueJob(stackId:request:)`).
    let enqueues = Mutex(EnqueueQueue())
    /// Stacks of recently used webhook tokens (see `stack(webhookToken:publicURL:)`).
    let webhookTargets = WebhookTargetCache()
    /// Queued deploys that calls changing nothing but the count join in memory (see `enqueueJob`).
    let joinable = JoinableDeploys()
    /// When registry event ids were last pruned (see `pruneRegistryEventsIfDue`).
    let registryEventsPrunedAt = Mutex(Date.distantPast)
    private let stackRowObserver: StackRowObserver
    /// The database file as opened (`healthProblem()` checks that the path still names it).
    let openedFile: DatabaseFileIdentity?

    /// Opens (and migrates) the database at `path`.
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        db = try DatabasePool(path: path, configuration: config)
        openedFile = DatabaseFileIdentity.of(path)
        // "A job is on disk before it is acknowledged" (CONTRACT.md): each commit syncs the
        // write-ahead log. GRDB sets NORMAL on the pool's one writer connection once it is in WAL
        // mode, which leaves the last commits in the OS cache, lost on a power cut or a kernel
        // crash. About 0.1-0.2 ms a commit here, shared by every call in a group commit.
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Self.migrator.migrate(db)
        stackRowObserver = StackRowObserver(cache: webhookTargets)
        db.add(transactionObserver: stackRowObserver, extent: .observerLifetime)
        try db.write { db in try self.pruneRegistryEvents(db, now: Date()) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE environment (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    type TEXT NOT NULL,
                    created_at DOUBLE NOT NULL,
                    last_seen_at DOUBLE,
                    agent_key TEXT UNIQUE,
                    agent_info TEXT
                );
                CREATE TABLE join_token (
                    token TEXT PRIMARY KEY,
                    environment_id TEXT NOT NULL REFERENCES environment(id) ON DELETE CASCADE,
                    expires_at DOUBLE NOT NULL,
                    used_at DOUBLE
                );
                CREATE TABLE stack (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    environment_id TEXT NOT NULL REFERENCES environment(id),
                    compose TEXT NOT NULL,
                    env TEXT NOT NULL,
                    status TEXT NOT NULL,
                    webhook_token TEXT UNIQUE,
                    webhook_created_at DOUBLE,
                    last_job_id TEXT,
                    services TEXT NOT NULL DEFAULT '[]',
                    created_at DOUBLE NOT NULL,
                    updated_at DOUBLE NOT NULL,
                    UNIQUE (environment_id, name)
                );
                CREATE TABLE job (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    stack_id TEXT NOT NULL,
                    stack_name TEXT NOT NULL,
                    environment_id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    state TEXT NOT NULL,
                    trigger TEXT NOT NULL,
                    coalesced INTEGER NOT NULL DEFAULT 0,
                    created_at DOUBLE NOT NULL,
                    started_at DOUBLE,
                    finished_at DOUBLE,
                    plan TEXT NOT NULL,
                    compose TEXT NOT NULL,
                    env TEXT NOT NULL,
                    pull INTEGER NOT NULL,
                    error TEXT,
                    result TEXT
                );
                CREATE INDEX job_open ON job(environment_id, stack_id, seq) WHERE state NOT IN ('succeeded','failed','rolled_back');
                CREATE INDEX job_stack ON job(stack_id, seq);
                CREATE TABLE job_log (
                    job_id TEXT NOT NULL,
                    chunk INTEGER NOT NULL,
                    lines TEXT NOT NULL,
                    PRIMARY KEY (job_id, chunk)
                );
                CREATE TABLE registry_event (
                    id TEXT PRIMARY KEY,
                    seen_at DOUBLE NOT NULL
                );
                CREATE TABLE registry (
                    id TEXT PRIMARY KEY,
                    url TEXT NOT NULL UNIQUE,
                    username TEXT NOT NULL,
                    password TEXT NOT NULL,
                    created_at DOUBLE NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-pins") { db in
            // Images a successful trigger set (`?tag=`, a registry push) that the compose file does not say.
            try db.execute(sql: "ALTER TABLE stack ADD COLUMN pins TEXT NOT NULL DEFAULT '{}'")
        }
        migrator.registerMigration("v3-open-jobs-by-stack") { db in
            // A stack's unfinished jobs without walking its whole history: every queued, joined,
            // claimed and finished job looks them up by stack (`state NOT IN` final in each such
            // query lets SQLite use this partial index).
            try db.execute(sql: "CREATE INDEX job_open_stack ON job(stack_id, seq) WHERE state NOT IN \(finalStates)")
        }
        migrator.registerMigration("v4-registry-events-per-stack") { db in
            // A registry sends one envelope, with the same event ids, to every endpoint: an id is
            // "received" per stack, not once for the whole server. The old rows cannot say which
            // stack received them and are dropped: at worst an event a registry redelivers across
            // the upgrade runs once more for a stack, deploying the image the stack already runs.
            // A stack's rows go with it (`ON DELETE CASCADE`); rows older than
            // `registryEventRetention` are pruned (`pruneRegistryEvents`).
            try db.execute(sql: """
                DROP TABLE registry_event;
                CREATE TABLE registry_event (
                    stack_id TEXT NOT NULL REFERENCES stack(id) ON DELETE CASCADE,
                    id TEXT NOT NULL,
                    seen_at DOUBLE NOT NULL,
                    PRIMARY KEY (stack_id, id)
                ) WITHOUT ROWID;
                CREATE INDEX registry_event_seen_at ON registry_event(seen_at);
                """)
        }
        migrator.registerMigration("v5-definition-revision") { db in
            // How many times the stack was edited (`PUT`), and the count each job was queued at: a
            // job's success makes its compose file, env and pins the stack's only if no edit came
            // after it was queued (`applyToStack`).
            try db.execute(sql: """
                ALTER TABLE stack ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE job ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v6-job-log-size") { db in
            // Bytes stored per job log, for the server's cap (`appendLog`), so that the log's
            // chunks are not read to count them.
            try db.execute(sql: """
                CREATE TABLE job_log_size (
                    job_id TEXT PRIMARY KEY,
                    bytes INTEGER NOT NULL
                ) WITHOUT ROWID;
                INSERT INTO job_log_size (job_id, bytes)
                    SELECT job_id, SUM(length(CAST(lines AS BLOB))) FROM job_log GROUP BY job_id;
                """)
        }
        migrator.registerMigration("v7-jobs-by-state") { db in
            // Jobs by state and end: the prune finds final jobs finished before the retention
            // (`pruneJobs`), the agent-lost check finds dispatched and running ones, and `jobCounts`
            // (every `/metrics` scrape) counts over this index instead of reading every job row.
            try db.execute(sql: "CREATE INDEX job_state_finished ON job(state, finished_at)")
        }
        migrator.registerMigration("v8-health-timeout") { db in
            // A stack's health timeout in seconds (`Stack.healthTimeout`), and the one each job was
            // queued with, which it keeps as it keeps its compose file and env: an edit does not
            // change what a job queued before it runs. NULL, as on every row of an older server,
            // is the default (`Stack.defaultHealthTimeout`).
            try db.execute(sql: """
                ALTER TABLE stack ADD COLUMN health_timeout INTEGER;
                ALTER TABLE job ADD COLUMN health_timeout INTEGER;
                """)
        }
        return migrator
    }
}

// MARK: JSON columns

enum JSONColumn {
    // Configured once and never changed, so safe to share between threads.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    private static let decoder = JSONDecoder()

    static func encode<T: Encodable>(_ value: T) -> String {
        genericEncode(value)
    }

    static func genericEncode<T: Encodable>(_ value: T) -> String {
        String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    // The columns written with every job, without the generic encoder's tree; the same bytes
    // (`JobJSONTests`).
    static func encode(_ value: [String: String]) -> String { written { $0.object(value) } }
    static func encode(_ value: JobPlan) -> String { written { $0.plan(value) } }
    static func encode(_ value: JobTrigger) -> String { written { $0.trigger(value) } }
    static func encode(_ value: JobOutcome) -> String { written { $0.outcome(value) } }
    static func encode(_ value: JobError) -> String { written { $0.error(value) } }
    static func encode(_ value: [StackService]) -> String { written { $0.services(value) } }

    private static func written(_ write: (inout JSONWriter) -> Void) -> String {
        var out = JSONWriter(capacity: 256)
        write(&out)
        return out.text
    }

    // The columns read with every finished or dispatched job, by `ColumnJSONReader` when it can.
    static func decode(_ type: [String: String].Type, _ text: String?) -> [String: String]? {
        guard let text else { return nil }
        return ColumnJSONReader.read(text)?.strings ?? genericDecode(type, text)
    }

    static func decode(_ type: JobPlan.Type, _ text: String?) -> JobPlan? {
        guard let text else { return nil }
        return ColumnJSONReader.read(text)?.plan ?? genericDecode(type, text)
    }

    static func decode(_ type: JobTrigger.Type, _ text: String?) -> JobTrigger? {
        guard let text else { return nil }
        return ColumnJSONReader.read(text)?.trigger ?? genericDecode(type, text)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        genericDecode(type, text)
    }

    static func genericDecode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? decoder.decode(type, from: Data(text.utf8))
    }
}

extension Date {
    var column: Double { timeIntervalSince1970 }
    init?(column: Double?) {
        guard let column else { return nil }
        self.init(timeIntervalSince1970: column)
    }
}
