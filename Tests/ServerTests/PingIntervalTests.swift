import Foundation
import Logging
import Synchronization
import Testing
import WharfTestSupport
import WharfAgent
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// A large fleet is asked for a longer ping interval (`PingPolicy`), so that its idle pings stay
/// under the server's rate; both sides then allow that many more seconds of silence (the server
/// up to 12 s). On real CURVE sockets: the server with raw DEALERs, the agent with a ROUTER that
/// plays the server.
@Suite(.timeLimit(.minutes(2)))
struct PingIntervalTests {
    /// A DEALER connected with an agent's `pair`, that has said nothing yet.
    static func dealer(_ pair: CurveKeyPair, harness: LinkHarness, context: ZMQContext) throws -> ZMQChannel {
        try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.makeCurveClient(keyPair: pair, serverKey: harness.serverKeys.publicKey)
            try socket.connect(harness.dispatcher.endpoint)
        }
    }

    /// Connects a DEALER per enrolled agent first, then says each one's hello and reads its
    /// welcome in turn, so that the agents' silences start within a few round trips of each
    /// other however slowly the enrolments and CURVE handshakes go on a loaded machine.
    static func hellos(_ enrolled: [(Environment, CurveKeyPair)], harness: LinkHarness, context: ZMQContext,
                       edge: Set<Int> = []) async throws -> [(ZMQChannel, AsyncStream<ZMQMessage>.Iterator, Welcome)] {
        var channels: [ZMQChannel] = []
        for (_, pair) in enrolled {
            channels.append(try Self.dealer(pair, harness: harness, context: context))
        }
        var welcomed: [(ZMQChannel, AsyncStream<ZMQMessage>.Iterator, Welcome)] = []
        for (index, channel) in channels.enumerated() {
            var incoming = channel.incoming.makeAsyncIterator()
            _ = try await channel.send([WireCodec.encode(.hello(AgentHello(
                agentVersion: "t", hostname: "raw", dockerVersion: "-", composeFlavour: "plugin", composeVersion: "-",
                edge: edge.contains(index), holding: [], results: [])))])
            guard case .welcome(let welcome) = try await Self.next(&incoming) else {
                throw CancellationError()
            }
            welcomed.append((channel, incoming, welcome))
        }
        return welcomed
    }

    @Test func theServerWaitsNoLongerThanItsCapForAnAgentItAskedForMore() async throws {
        // The contract's "disconnected within 15 s": five asked intervals (15 s at 3 s) would be
        // too long; the cap (12 s, here 4 s) holds. The setup (a commit with its sync for each
        // hello) can take seconds on a loaded machine: no agent is dropped until it is done.
        let harness = try await LinkHarness(agentTimeout: .seconds(600), pingsPerSecond: 1, askedTimeoutCap: .seconds(4))
        let context = try ZMQContext()
        var enrolled: [(Environment, CurveKeyPair)] = []
        for _ in 0..<3 { enrolled.append(try await harness.enrolledEnvironment()) }
        var welcomed = try await Self.hellos(enrolled, harness: harness, context: context)
        // The third was welcomed with 3 s and asked again by its pong (before the others, silent,
        // can be dropped); silent from its ping on, it is dropped after 4 s, not 15.
        #expect(welcomed[2].2.pingSeconds == 3)
        let started = ContinuousClock.now
        _ = try await welcomed[2].0.send([WireCodec.encode(.ping)])
        #expect(try await Self.next(&welcomed[2].1) == .pong(pending: 0, pingSeconds: 3))
        await harness.dispatcher.retime { $0.agentTimeout = .seconds(3) }
        #expect(await eventually(timeout: .seconds(14)) { await !harness.dispatcher.isConnected(enrolled[2].0.id) })
        #expect(ContinuousClock.now - started < .seconds(12))
        for (channel, _, _) in welcomed { await channel.shutdown() }
        await harness.stop()
    }

    static func next(_ incoming: inout AsyncStream<ZMQMessage>.Iterator) async throws -> ServerMessage {
        guard let message = await incoming.next() else { throw CancellationError() }
        return try WireCodec.decodeServerMessage(message.frames[0])
    }

    @Test func pastTheRateTheServerAsksForALongerIntervalAndWaitsThatLong() async throws {
        // 1 ping a second for the whole fleet: 3 agents are asked for 3 s, 4 for 4 s, 2 are not
        // asked. Those not asked are dropped after 5 s of silence, the others after five asked
        // intervals up to a cap of 20 s here. No agent is dropped until the setup (a commit with
        // its sync for each hello, slow on a loaded machine) is done.
        let harness = try await LinkHarness(agentTimeout: .seconds(600), pingsPerSecond: 1, askedTimeoutCap: .seconds(20))
        let context = try ZMQContext()
        var enrolled: [(Environment, CurveKeyPair)] = []
        for _ in 0..<4 { enrolled.append(try await harness.enrolledEnvironment()) }
        let environments = enrolled.map { $0.0.id }
        // The fourth is an edge agent: it keeps its own interval.
        let welcomed = try await Self.hellos(enrolled, harness: harness, context: context, edge: [3])
        let channels = welcomed.map { $0.0 }
        var iterators = welcomed.map { $0.1 }
        // One and two agents ping at the default; the third makes the fleet ask for 3 s.
        for (index, (_, _, welcome)) in welcomed.enumerated() {
            #expect(welcome.pingSeconds == (index == 2 ? 3 : nil), "welcome \(index): \(welcome)")
        }
        // A pong asks the first and third agents for what four agents are asked: 4 s. The edge
        // agent is asked for nothing; the second stays silent from its hello on.
        for index in [0, 2, 3] {
            _ = try await channels[index].send([WireCodec.encode(.ping)])
            #expect(try await Self.next(&iterators[index]) == .pong(pending: 0, pingSeconds: index == 3 ? nil : 4))
        }
        // A connection with the second agent's key that never said hello is answered, but what it
        // is asked does not become the second agent's.
        let stray = try Self.dealer(enrolled[1].1, harness: harness, context: context)
        var strayIncoming = stray.incoming.makeAsyncIterator()
        _ = try await stray.send([WireCodec.encode(.ping)])
        #expect(try await Self.next(&strayIncoming) == .helloRequired)
        #expect(try await Self.next(&strayIncoming) == .pong(pending: 0, pingSeconds: 4))

        // Now 5 s of silence drops an agent never asked; the first and third, asked for 3 or 4 s
        // (3 once the second is gone) have 15 or 20 s from their next ping.
        await harness.dispatcher.retime { $0.agentTimeout = .seconds(5) }
        let silent = ContinuousClock.now
        for index in [0, 2, 3] {
            _ = try await channels[index].send([WireCodec.encode(.ping)])
            _ = try await Self.next(&iterators[index])
        }
        #expect(await eventually {
            let second = await harness.dispatcher.isConnected(environments[1])
            let edge = await harness.dispatcher.isConnected(environments[3])
            return !second && !edge
        })
        if ContinuousClock.now - silent < .seconds(7) { try await Task.sleep(until: silent + .seconds(7)) }
        #expect(await harness.dispatcher.isConnected(environments[0]))
        #expect(await harness.dispatcher.isConnected(environments[2]))

        // Two agents left: the default again.
        _ = try await channels[0].send([WireCodec.encode(.ping)])
        #expect(try await Self.next(&iterators[0]) == .pong(pending: 0))
        for channel in channels + [stray] { await channel.shutdown() }
        await harness.stop()
    }

    /// What the ROUTER playing the server heard, each message at the time its reader thread read it.
    struct Heard {
        var hellos: [ContinuousClock.Instant] = []
        /// The agent's connection, and when it was first welcomed.
        var routingId: [UInt8] = []
        var welcomedAt: ContinuousClock.Instant?
        var pings: [ContinuousClock.Instant] = []
        /// When the last pong went out.
        var lastPong: ContinuousClock.Instant?
        /// What its welcome and pongs ask for.
        var asked: Int? = 2
        /// Pings go unanswered.
        var mute = false

        func pings(after instant: ContinuousClock.Instant) -> [ContinuousClock.Instant] { pings.filter { $0 > instant } }
    }

    @Test func theAgentPingsAsOftenAsTheServerAsksAndWaitsFiveIntervals() async throws {
        // Every bound here holds however late a loaded machine runs the agent: its pings can only
        // come further apart, and it can only notice a silence later.
        let serverContext = try ZMQContext()
        let zap = try ZAPHandler(context: serverContext) { _ in .allow(userId: "fake") }
        let serverKeys = try CurveKeyPair.generate()
        let router = try ZMQChannel(context: serverContext, type: .router, batched: true) { socket in
            try socket.makeCurveServer(secretKey: serverKeys.secretKey, zapDomain: "wharf")
            try socket.bind("tcp://127.0.0.1:*")
        }
        let heard = Mutex(Heard())
        let server = Task {
            for await batch in router.batches {
                for (message, readAt) in zip(batch.messages, batch.receivedAt) where message.frames.count == 2 {
                    let reply: ServerMessage
                    switch try WireCodec.decodeAgentMessage(message.frames[1]) {
                    case .hello:
                        let asked = heard.withLock {
                            $0.hellos.append(readAt)
                            $0.routingId = message.frames[0]
                            $0.welcomedAt = $0.welcomedAt ?? readAt
                            return $0.asked
                        }
                        reply = .welcome(Welcome(environmentId: "env_fake", serverVersion: "t", pending: 0, pingSeconds: asked))
                    case .ping:
                        let (asked, mute) = heard.withLock { $0.pings.append(readAt); return ($0.asked, $0.mute) }
                        if mute { continue }
                        reply = .pong(pending: 0, pingSeconds: asked)
                        heard.withLock { $0.lastPong = .now }
                    default:
                        continue
                    }
                    _ = try await router.send([message.frames[0], WireCodec.encode(reply)])
                }
            }
        }

        // Its own interval is 0.2 s and it gives the server 1 s; asked for 2 s, it pings every 2 s
        // and waits 10 s.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-ping-\(UUID().uuidString)")
        var configuration = AgentRuntime.Configuration(endpoint: router.endpoint, serverKey: serverKeys.publicKey,
                                                       keyPair: try CurveKeyPair.generate(), hostname: "ping-test")
        configuration.pingInterval = .milliseconds(200)
        configuration.serverTimeout = .seconds(1)
        var logger = Logger(label: "test-agent")
        logger.logLevel = .warning
        let agentContext = try ZMQContext()
        let runtime = AgentRuntime(configuration: configuration, engine: SimulatedEngine(delay: .zero, journal: nil),
                                   journal: try JobJournal(dataDirectory: directory), context: agentContext, logger: logger)
        let agent = Task { try await runtime.run() }

        // From 3 s after its welcome (time enough to have read it), at most one ping every 2 s: at
        // most 4 in the next 6 s, where its own interval would send 30. It still pings.
        #expect(await eventually(timeout: .seconds(30)) { heard.withLock { $0.welcomedAt } != nil })
        let welcomedAt = try #require(heard.withLock { $0.welcomedAt })
        #expect(await eventually(timeout: .seconds(40)) { heard.withLock { $0.pings(after: welcomedAt + .seconds(9)) }.count >= 1 })
        let window = heard.withLock { $0.pings(after: welcomedAt + .seconds(3)) }.filter { $0 <= welcomedAt + .seconds(9) }
        #expect(window.count <= 4, "pings 3–9 s after the welcome: \(window.count)")
        #expect(heard.withLock { $0.hellos.count } == 1, "the agent reconnected while answered")

        // Unanswered: it reconnects (a new hello) no sooner than 10 s after the last pong, five
        // asked intervals, where its own timeout is 1 s. Watched for 6 s.
        let mutedAt = heard.withLock { $0.mute = true; return ContinuousClock.now }
        try await Task.sleep(for: .seconds(6))
        let (lastPong, hellos) = heard.withLock { ($0.lastPong, $0.hellos) }
        let reconnect = hellos.first { $0 > mutedAt }
        if let reconnect, let lastPong {
            #expect(reconnect - lastPong >= .milliseconds(9_800), "the agent reconnected \(reconnect - lastPong) after the last pong")
        }

        // Answered again, and no longer asked: from this pong on, its own 0.2 s again. Eight
        // pings then take about 1.4 s; at 2 s they would take 14.
        let (routingId, clearedAt) = heard.withLock {
            $0.mute = false
            $0.asked = nil
            return ($0.routingId, ContinuousClock.now)
        }
        _ = try await router.send([routingId, WireCodec.encode(ServerMessage.pong(pending: 0))])
        #expect(await eventually(timeout: .seconds(40)) { heard.withLock { $0.pings(after: clearedAt) }.count >= 9 })
        let after = heard.withLock { $0.pings(after: clearedAt) }
        if after.count >= 9 {
            #expect(after[8] - after[1] < .seconds(10), "eight pings took \(after[8] - after[1]) after the default came back")
        }

        agent.cancel()
        _ = try? await agent.value
        server.cancel()
        await router.shutdown()
        await zap.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}
