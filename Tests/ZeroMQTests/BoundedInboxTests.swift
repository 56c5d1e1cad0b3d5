import Foundation
import Testing
import WharfTestSupport
import ZeroMQ

/// A batched channel whose consumer falls behind holds a bounded inbox, and libzmq's high-water
/// marks push back on the sender, instead of the channel reading everything into memory.
///
/// About 1.5 s alone; in the full suite, with other suites' tasks on the two cooperative threads of
/// a 2-core machine, it took 47 s and once over a minute: the limit only catches a hang.
@Suite(.timeLimit(.minutes(4)))
struct BoundedInboxTests {
    @Test func aConsumerThatFallsBehindPushesBackOnTheSenderAndLosesNothing() async throws {
        let context = try ZMQContext()
        let limit = 1_000
        let server = try ZMQChannel(context: context, type: .router, batched: true, maxBatch: 100, inboxLimit: limit) { socket in
            try socket.setReceiveHighWaterMark(1_000)
            try socket.bind("tcp://127.0.0.1:*")
        }
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.setSendHighWaterMark(1_000)
            try socket.connect(server.endpoint)
        }
        var batches = server.batches.makeAsyncIterator()
        // Connected: the first message arrives.
        #expect(try await client.send([Array("-1".utf8)]))
        let first = await batches.next()
        #expect(first?.messages.count == 1)

        // The consumer does not look while 50,000 messages of 1 KiB (more than the sockets' and the
        // kernel's buffers hold) are offered, each again until taken or until nothing goes for 1 s.
        let padding = " " + String(repeating: "x", count: 1_024)
        func message(_ number: Int) -> [[UInt8]] { [Array("\(number)\(padding)".utf8)] }
        let total = 50_000
        var accepted = 0
        var lastProgress = ContinuousClock.now
        // One at a time: in a batch, a message after a refused one may still go, out of order.
        while accepted < total {
            if try await client.send(message(accepted)) {
                accepted += 1
                lastProgress = .now
            } else if ContinuousClock.now - lastProgress > .seconds(1) {
                break
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        // Whatever the pipes hold is read up to the limit, no further.
        #expect(await eventually(timeout: .seconds(5)) { server.inboxCount >= limit })
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.inboxCount <= limit, "the inbox grew to \(server.inboxCount)")
        #expect(accepted < total, "the sender never felt the consumer's pace")

        // Once the consumer takes, everything accepted arrives, in order.
        var received: [Int] = []
        while received.count < accepted, let batch = await batches.next() {
            received += batch.messages.map { Int(String(decoding: $0.frames[1], as: UTF8.self).prefix { $0 != " " })! }
        }
        #expect(received == Array(0..<accepted))
        await client.shutdown()
        await server.shutdown()
    }
}
