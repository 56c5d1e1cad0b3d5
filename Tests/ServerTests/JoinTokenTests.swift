import Foundation
import GRDB
import Testing
import WharfTestSupport
@testable import WharfServer
import ZeroMQ

/// Join tokens work once and expire: 24 hours for the API's, whatever the TTL for the store's.
struct JoinTokenTests {
    @Test func joinTokensExpireAfter24HoursAndWorkOnce() async throws {
        let store = try StoreBatchingTests.store()
        defer { StoreBatchingTests.discard(store) }
        let before = Date()
        let (environment, first) = try await store.createEnvironment(name: "node", type: .agent)
        let second = try await store.createJoinToken(environmentId: environment.id)
        let expiries = try await store.db.read { db in
            try Double.fetchAll(db, sql: "SELECT expires_at FROM join_token WHERE token IN (?, ?)", arguments: [first, second])
        }
        #expect(expiries.count == 2)
        for expiry in expiries {
            let inSeconds = Date(column: expiry)!.timeIntervalSince(before)
            #expect(inSeconds > 86_400 - 60 && inSeconds < 86_400 + 60, "expires in \(inSeconds) s, not 24 h")
        }

        // Spent once, refused the second time, with the same answer as an unknown token.
        let key = try CurveKeyPair.generate().publicKey.z85
        _ = try await store.enrol(joinToken: first, publicKey: key, hostname: "h", version: "t")
        await #expect(throws: StoreError.self) { _ = try await store.enrol(joinToken: first, publicKey: key, hostname: "h", version: "t") }

        // Past its expiry, a token that was never used is refused.
        let brief = try await store.createJoinToken(environmentId: environment.id, ttl: 0.3)
        try await Task.sleep(for: .milliseconds(600))
        do {
            _ = try await store.enrol(joinToken: brief, publicKey: key, hostname: "h", version: "t")
            Issue.record("an expired join token was accepted")
        } catch let error as StoreError {
            #expect(error.code == "unauthorized")
            #expect(error.message == "the join token is unknown, used or expired")
        }
    }
}
