import Foundation
import Testing
import WharfProtocol
@testable import WharfServer
import ZeroMQ

/// The server's link under many peers and hostile input: real sockets, real SQLite.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct LinkRobustnessTests {
    @Test func thousandAgentsConnectAndAreWelcomed() async throws {
        // These raw sockets do not ping, so the server must not time them out while the rest connect.
        let harness = try await LinkHarness(maxSockets: 8192, agentTimeout: .seconds(300))
        let count = 1000
        var pairs: [CurveKeyPair] = []
        for i in 0..<count {
            let (_, pair) = try await harness.enrolledEnvironment(name: "fleet-\(i)")
            pairs.append(pair)
        }
        let endpoint = harness.dispatcher.endpoint
        let serverKey = harness.serverKeys.publicKey
        let context = try ZMQContext(maxSockets: 4096)
        // One thread polls all 1000 DEALERs, as a fleet simulator would.
        let welcomed = try await Task.detached { () throws -> Int in
            let sockets = try pairs.map { pair -> ZMQSocket in
                let socket = try ZMQSocket(context: context, type: .dealer)
                try socket.makeCurveClient(keyPair: pair, serverKey: serverKey)
                try socket.connect(endpoint)
                return socket
            }
            let hello = WireCodec.encode(.hello(AgentHello(agentVersion: "t", hostname: "fleet", dockerVersion: "-",
                                                           composeFlavour: "plugin", composeVersion: "-", edge: false,
                                                           holding: [], results: [])))
            for socket in sockets { _ = try socket.send([hello], dontWait: false) }
            var done = Set<Int>()
            let deadline = ContinuousClock.now + .seconds(60)
            while done.count < sockets.count, ContinuousClock.now < deadline {
                for (index, socket) in sockets.enumerated() where !done.contains(index) {
                    if let message = try socket.receive(dontWait: true),
                       case .welcome = try WireCodec.decodeServerMessage(message.frames[0]) {
                        done.insert(index)
                    }
                }
                usleep(2000)
            }
            sockets.forEach { $0.close() }
            return done.count
        }.value
        #expect(welcomed == count)
        #expect(await harness.dispatcher.connectedEnvironments().count == count)
        await harness.stop()
    }

    @Test func garbageMalformedAndOversizedInputLeavesTheServerServing() async throws {
        let harness = try await LinkHarness()
        let (environment, pair) = try await harness.enrolledEnvironment()
        let port = UInt16(harness.dispatcher.endpoint.split(separator: ":").last!)!

        // 1. Raw garbage bytes at the TCP port (not ZMTP at all).
        for size in [1, 64, 10_000, 200_000] {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fd)
        }

        // 2. An authenticated agent sending malformed frames: not JSON, unknown type, wrong version, bad body, extra frames.
        let context = try ZMQContext()
        let client = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.makeCurveClient(keyPair: pair, serverKey: harness.serverKeys.publicKey)
            try socket.connect(harness.dispatcher.endpoint)
        }
        let bad: [[[UInt8]]] = [
            [Array("not json".utf8)],
            [Array(#"{"v":1,"type":"launch_missiles","body":{}}"#.utf8)],
            [Array(#"{"v":99,"type":"ping","body":{}}"#.utf8)],
            [Array(#"{"v":1,"type":"result","body":{"jobId":5}}"#.utf8)],
            [Array(#"{"v":1,"type":"ack","body":{"jobId":"job_does_not_exist"}}"#.utf8), Array("extra".utf8)],
            [[0xFF, 0xFE, 0x00]],
            [[]],
        ]
        for frames in bad { _ = try await client.send(frames) }
        var errors = 0
        for await message in client.incoming {
            if case .error = try WireCodec.decodeServerMessage(message.frames[0]) { errors += 1 }
            if errors >= 5 { break }
        }
        #expect(errors >= 5, "malformed messages are answered with an error")

        // 3. An oversized message: libzmq drops the connection (ZMQ_MAXMSGSIZE) without the server reading it.
        let big = try ZMQChannel(context: context, type: .dealer) { socket in
            try socket.makeCurveClient(keyPair: pair, serverKey: harness.serverKeys.publicKey)
            try socket.connect(harness.dispatcher.endpoint)
        }
        _ = try await big.send([[UInt8](repeating: 0x41, count: WireCodec.maxFrameBytes + 1024)])
        try await Task.sleep(for: .milliseconds(500))
        await big.shutdown()

        // Still serving: a real agent connects and a job goes through.
        await client.shutdown()
        let (_, agent) = try harness.agent(keys: pair)
        let (_, job) = try await harness.stack("after-garbage", on: environment.id)
        #expect(try await harness.dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(20)).state == .succeeded)
        agent.cancel()
        await harness.stop()
    }
}
