import Foundation
import Synchronization
import Testing
import WharfTestSupport
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
        let limit = Duration.seconds(3)
        let server = try ZMQChannel(context: context, type: .router, batched: true,
                                    deferrable: { $0.frames.last == Array("ping".utf8) },
                                    deferLimit: limit) { socket in
            try socket.bind("tcp://127.0.0.1:*")
        }
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.connect(server.endpoint)
        }
        // A consumer waiting for batches, as the dispatcher does: each batch, when it came, and
        // when the socket's thread had read its messages. (Compared with those read times, not with
        // sleeps, so that a loaded machine can only make a batch later, never earlier.)
        let seen = Mutex<[(at: ContinuousClock.Instant, frames: [String], readAt: [ContinuousClock.Instant])]>([])
        let consumer = Task {
            for await batch in server.batches {
                let frames = batch.messages.map { String(decoding: $0.frames[1], as: UTF8.self) }
                seen.withLock { $0.append((ContinuousClock.now, frames, batch.receivedAt)) }
            }
        }
        // A message that may not wait: once it is seen, the consumer is running and waits again.
        _ = try await client.send([Array("hello".utf8)])
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0.count == 1 } })
        try await Task.sleep(for: .milliseconds(100))
        // Alone, pings wait for the limit, and come together. (Sent in one call: three awaited
        // sends on a starved machine could be further apart than the limit.)
        _ = await client.send(batch: Array(repeating: [Array("ping".utf8)], count: 3))
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0.count == 2 } })
        let first = try #require(seen.withLock { $0.last })
        #expect(first.frames == ["ping", "ping", "ping"])
        let held = first.at - first.readAt[0]
        #expect(held >= limit - .milliseconds(20), "handed over \(held) after the first was read")
        // A message that may not wait takes the ping before it along, long before the limit.
        _ = await client.send(batch: [[Array("ping".utf8)], [Array("result".utf8)]])
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0.count == 3 } })
        let second = try #require(seen.withLock { $0.last })
        #expect(second.frames == ["ping", "result"])
        #expect(second.at - second.readAt[0] < limit, "the ping was not held for the limit")
        consumer.cancel()
        await client.shutdown()
        await server.shutdown()
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
