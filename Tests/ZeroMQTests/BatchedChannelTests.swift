import Foundation
import Synchronization
import Testing
import ZeroMQ

/// A batched channel over real libzmq sockets: what a slow consumer gets, and batched sends.
@Suite(.timeLimit(.minutes(1)))
struct BatchedChannelTests {
    @Test func aSlowConsumerGetsEverythingInOrderInFewCappedBatches() async throws {
        let context = try ZMQContext()
        let server = try ZMQChannel(context: context, type: .router, batched: true, maxBatch: 500) { socket in
            try socket.setReceiveHighWaterMark(10_000)
            try socket.bind("tcp://127.0.0.1:*")
        }
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.setSendHighWaterMark(10_000)
            try socket.connect(server.endpoint)
        }
        let count = 2_000
        let outcomes = await client.send(batch: (0..<count).map { [Array("\($0)".utf8)] })
        #expect(outcomes.count == count)
        #expect(outcomes.allSatisfy { (try? $0.get()) == true })
        // Let everything arrive before looking: a consumer that was busy meanwhile.
        try await Task.sleep(for: .milliseconds(500))
        let deadline = ContinuousClock.now + .seconds(10)
        var received: [Int] = []
        var sizes: [Int] = []
        for await batch in server.batches {
            #expect(batch.messages.count == batch.receivedAt.count)
            #expect(zip(batch.receivedAt, batch.receivedAt.dropFirst()).allSatisfy { $0 <= $1 })
            sizes.append(batch.messages.count)
            received += batch.messages.map { Int(String(decoding: $0.frames[1], as: UTF8.self))! }
            if received.count >= count || ContinuousClock.now > deadline { break }
        }
        #expect(received.count == count)
        #expect(received == Array(0..<count), "every message, in order")
        #expect(sizes.allSatisfy { $0 <= 500 })
        #expect(sizes.count <= 8, "a waiting consumer gets large batches, not one per wake-up: \(sizes)")
        // The batched channel's per-message stream is closed.
        var iterator = server.incoming.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        await client.shutdown()
        await server.shutdown()
    }

    @Test func deferrableMessagesWaitForOthersOrTheirLimit() async throws {
        let context = try ZMQContext()
        let server = try ZMQChannel(context: context, type: .router, batched: true,
                                    deferrable: { $0.frames.last == Array("ping".utf8) },
                                    deferLimit: .milliseconds(400)) { socket in
            try socket.bind("tcp://127.0.0.1:*")
        }
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.connect(server.endpoint)
        }
        // A consumer waiting for batches, as the dispatcher does; each batch with when it came.
        let seen = Mutex<[(at: ContinuousClock.Instant, frames: [String])]>([])
        let consumer = Task {
            for await batch in server.batches {
                let frames = batch.messages.map { String(decoding: $0.frames[1], as: UTF8.self) }
                seen.withLock { $0.append((ContinuousClock.now, frames)) }
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        // Alone, pings wait for the limit, and come together.
        let sent = ContinuousClock.now
        for _ in 0..<3 { _ = try await client.send([Array("ping".utf8)]) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(seen.withLock { $0.isEmpty }, "pings held back")
        #expect(await eventually { seen.withLock { $0.count == 1 } })
        let first = try #require(seen.withLock { $0.first })
        #expect(first.frames == ["ping", "ping", "ping"])
        #expect(first.at - sent >= .milliseconds(380), "handed over after \(first.at - sent)")
        // A message that may not wait takes the pings before it along at once.
        let again = ContinuousClock.now
        _ = try await client.send([Array("ping".utf8)])
        try await Task.sleep(for: .milliseconds(50))
        _ = try await client.send([Array("result".utf8)])
        #expect(await eventually { seen.withLock { $0.count == 2 } })
        let second = try #require(seen.withLock { $0.last })
        #expect(second.frames == ["ping", "result"])
        #expect(second.at - again < .milliseconds(350), "not held for the limit: \(second.at - again)")
        consumer.cancel()
        await client.shutdown()
        await server.shutdown()
    }

    /// Polls `condition` every 10 ms for up to 3 s.
    func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func batchedSendsReportUnreachablePeersEach() async throws {
        let context = try ZMQContext()
        let server = try ZMQChannel(context: context, type: .router, batched: true) { socket in
            try socket.setRouterMandatory(true)
            try socket.bind("tcp://127.0.0.1:*")
        }
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.setRoutingId(Array("peer".utf8))
            try socket.connect(server.endpoint)
        }
        _ = try await client.send([Array("hi".utf8)])
        var batches = server.batches.makeAsyncIterator()
        let first = try #require(await batches.next())
        #expect(first.messages.first?.frames[0] == Array("peer".utf8))
        let outcomes = await server.send(batch: [
            [Array("peer".utf8), Array("one".utf8)],
            [Array("nobody".utf8), Array("two".utf8)],
            [Array("peer".utf8), Array("three".utf8)],
        ])
        #expect((try? outcomes[0].get()) == true)
        #expect(outcomes[1].hostUnreachableForTest)
        #expect((try? outcomes[2].get()) == true)
        await client.shutdown()
        await server.shutdown()
    }
}

extension Result where Success == Bool, Failure == ZMQError {
    var hostUnreachableForTest: Bool {
        if case .failure(let error) = self { return error.hostUnreachable }
        return false
    }
}
