import Synchronization
import ZeroMQ

/// Enrolled agent keys, readable from the ZAP handler's thread without waiting on the database.
///
/// ZAP admits a key with a User-Id naming both its environment and the key (`userId(…)`). libzmq
/// fixes that User-Id for the life of the connection, so the dispatcher asks `environment(forUserId:)`
/// on every message: a connection whose key was since replaced by a new enrolment, or whose
/// environment was deleted, is then no longer believed.
public final class AgentKeyRegistry: Sendable {
    private struct State {
        var keys: [CurveKey: String] = [:]
        /// User-Id of each current key → its environment.
        var users: [String: String] = [:]

        mutating func add(_ key: CurveKey, _ environmentId: String) {
            keys[key] = environmentId
            users[AgentKeyRegistry.userId(environmentId: environmentId, key: key)] = environmentId
        }

        mutating func removeKeys(of environmentId: String) {
            for (key, id) in keys where id == environmentId {
                keys[key] = nil
                users[AgentKeyRegistry.userId(environmentId: id, key: key)] = nil
            }
        }
    }
    private let state: Mutex<State>

    /// Starts with `keys`: Z85 public key → environment id.
    public init(keys: [String: String] = [:]) {
        var state = State()
        for (text, environmentId) in keys {
            if let key = try? CurveKey(z85: text) { state.add(key, environmentId) }
        }
        self.state = Mutex(state)
    }

    /// The User-Id ZAP gives a connection with `key` in `environmentId`: `<environment id> <key in Z85>`
    /// (Z85 has no space), so a key enrolled again later, in this or another environment, is told apart.
    public static func userId(environmentId: String, key: CurveKey) -> String {
        "\(environmentId) \(key.z85)"
    }

    /// Admits `key` for `environmentId`, replacing any key that environment had.
    public func enrol(key: CurveKey, environmentId: String) {
        state.withLock { state in
            state.removeKeys(of: environmentId)
            if let other = state.keys[key] { state.users[Self.userId(environmentId: other, key: key)] = nil }
            state.add(key, environmentId)
        }
    }

    /// Forgets every key of an environment.
    public func remove(environmentId: String) {
        state.withLock { $0.removeKeys(of: environmentId) }
    }

    /// The environment a key belongs to, if it is enrolled.
    public func environment(for key: CurveKey) -> String? {
        state.withLock { $0.keys[key] }
    }

    /// The environment of a connection's User-Id, if its key is still that environment's key.
    public func environment(forUserId userId: String) -> String? {
        state.withLock { $0.users[userId] }
    }

    /// `environment(forUserId:)` for many User-Ids under one lock (a batch of messages).
    public func environments(forUserIds userIds: some Sequence<String>) -> [String: String] {
        state.withLock { state in
            var found: [String: String] = [:]
            for userId in userIds where found[userId] == nil {
                if let environmentId = state.users[userId] { found[userId] = environmentId }
            }
            return found
        }
    }

    /// The ZAP decision for a connection: only enrolled CURVE keys get in, as their environment and key.
    public func decide(_ request: ZAPRequest) -> ZAPDecision {
        guard request.mechanism == "CURVE", let key = request.clientKey else {
            return .deny(reason: "CURVE required")
        }
        guard let environmentId = environment(for: key) else {
            return .deny(reason: "unknown agent key")
        }
        return .allow(userId: Self.userId(environmentId: environmentId, key: key))
    }
}
