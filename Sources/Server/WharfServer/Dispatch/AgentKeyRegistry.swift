import Synchronization
import ZeroMQ

/// Enrolled agent keys, readable from the ZAP handler's thread without waiting on the database.
public final class AgentKeyRegistry: Sendable {
    private let keys: Mutex<[CurveKey: String]>

    /// Starts with `keys`: Z85 public key → environment id.
    public init(keys: [String: String] = [:]) {
        var parsed: [CurveKey: String] = [:]
        for (text, environmentId) in keys {
            if let key = try? CurveKey(z85: text) { parsed[key] = environmentId }
        }
        self.keys = Mutex(parsed)
    }

    /// Admits `key` for `environmentId`, replacing any key that environment had.
    public func enrol(key: CurveKey, environmentId: String) {
        keys.withLock { keys in
            for (other, id) in keys where id == environmentId { keys[other] = nil }
            keys[key] = environmentId
        }
    }

    /// Forgets every key of an environment.
    public func remove(environmentId: String) {
        keys.withLock { keys in
            for (key, id) in keys where id == environmentId { keys[key] = nil }
        }
    }

    /// The environment a key belongs to, if it is enrolled.
    public func environment(for key: CurveKey) -> String? {
        keys.withLock { $0[key] }
    }

    /// The ZAP decision for a connection: only enrolled CURVE keys get in, as their environment.
    public func decide(_ request: ZAPRequest) -> ZAPDecision {
        guard request.mechanism == "CURVE", let key = request.clientKey else {
            return .deny(reason: "CURVE required")
        }
        guard let environmentId = environment(for: key) else {
            return .deny(reason: "unknown agent key")
        }
        return .allow(userId: environmentId)
    }
}
