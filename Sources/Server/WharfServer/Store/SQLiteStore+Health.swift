import Foundation
import GRDB

/// The device and inode of a file: which file a path names right now.
struct DatabaseFileIdentity: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64

    /// The identity of the file at `path`, or `nil` when there is none.
    static func of(_ path: String) -> DatabaseFileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return DatabaseFileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// Why the store cannot be used: `reason` may be shown to anyone, `cause` only in the server's log.
public struct StoreHealthProblem: Sendable, Equatable {
    public var reason: String
    public var cause: String
}

extension SQLiteStore {
    /// Why the store cannot be used now, or `nil` when it can: for `GET /api/health`.
    ///
    /// Cheap enough to answer every health probe: one `stat` and one read of a small table, no write.
    /// - The database file at the path opened must still be the file opened: one deleted or replaced
    ///   under a running server (a volume removed, a restore) would take every later write to a file
    ///   no one will ever open again.
    /// - A read must succeed (a disk error, a file that is no longer a database).
    public func healthProblem() async -> StoreHealthProblem? {
        if DatabaseFileIdentity.of(db.path) != openedFile {
            return StoreHealthProblem(reason: "the database file was removed or replaced while the server runs: restart the server",
                                      cause: "\(db.path) is not the file the server opened")
        }
        do {
            _ = try await db.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM environment") }
        } catch {
            return StoreHealthProblem(reason: "the database cannot be read", cause: "\(error)")
        }
        return nil
    }
}
