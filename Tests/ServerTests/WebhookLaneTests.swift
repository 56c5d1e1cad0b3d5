import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing
import WharfProtocol
@testable import WharfServer

/// Webhook calls without a body, taken on the event loop (`WebhookLane`), on a live server with the
/// real API, a real SQLite file and the real link: the lane answers what the router would have
/// answered (a join at once, a new job or a changed deploy once the store has written it), leaves
/// every other call to the router, hands a call the store failed to the router, keeps a
/// connection's answers in the order of its requests, and gives back the rate limits' tokens of a
/// call it hands on.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct WebhookLaneTests {
    static let publicURL = "http://wharf.test"

    struct Setup {
        let harness: LinkHarness
        let api: API
        let lane: WebhookLane
        let stack: Stack
        let firstJob: Job
        let path: String
    }

    static func setUp(limiters: WebhookLimiters? = nil) async throws -> Setup {
        let harness = try await LinkHarness()
        let api = harness.makeAPI(publicURL: publicURL, limiters: limiters, label: "lane-test")
        let lane = try #require(api.makeWebhookLane(serverName: "wharf"))
        // No agent connects: the stack's first deploy stays queued, and calls join it.
        let (environment, _) = try await harness.enrolledEnvironment()
        let (stack, firstJob) = try await harness.stack("app", on: environment.id)
        let token = WebhookToken.generate().rawValue
        _ = try await harness.store.setWebhookToken(stackId: stack.id, token: token, publicURL: publicURL)
        return Setup(harness: harness, api: api, lane: lane, stack: stack, firstJob: firstJob, path: "/api/stacks/webhooks/\(token)")
    }

    /// 2 calls a token and 5 an address, then one call per 1,000 s.
    static let slowLimiters = WebhookLimiters(token: .init(rate: 0.001, burst: 2), address: .init(rate: 0.001, burst: 5))

    static func application(_ setup: Setup) -> some ApplicationProtocol {
        Application(responder: setup.api.makeResponder(), server: .wharf(lane: setup.lane),
                    configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "wharf"))
    }

    /// The job in a 202, and the rest of the body.
    static func job(_ body: ByteBuffer) throws -> [String: Any] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])
        return try #require(object["job"] as? [String: Any])
    }

    @Test func aCallThatJoinsIsAnsweredByTheLaneAsTheRouterAnswersIt() async throws {
        let setup = try await Self.setUp()
        try await Self.application(setup).test(.live) { client in
            // The first call finds no joinable deploy in memory (and no cached token): the router answers it.
            let first = try await client.execute(uri: setup.path, method: .post)
            #expect(first.status == .accepted)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 0)
            let second = try await client.execute(uri: setup.path, method: .post)
            #expect(second.status == .accepted)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 1)

            // The same answer, but for the count: status, headers and the job.
            #expect(Set(first.headers.map(\.name)) == Set(second.headers.map(\.name)))
            for name in [HTTPField.Name.location, .contentType, .server] {
                #expect(first.headers[name] == second.headers[name], "\(name)")
            }
            #expect(second.headers[.location] == "/api/jobs/\(setup.firstJob.id)")
            #expect(second.headers[.contentLength] == String(second.body.readableBytes))
            let date = try #require(second.headers[.date])
            #expect(date.range(of: #"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"#,
                               options: .regularExpression) != nil, "\(date)")
            var firstJob = try Self.job(first.body)
            var secondJob = try Self.job(second.body)
            #expect(firstJob["coalesced"] as? Int == 1)
            #expect(secondJob["coalesced"] as? Int == 2)
            firstJob["coalesced"] = nil
            secondJob["coalesced"] = nil
            #expect(NSDictionary(dictionary: firstJob).isEqual(to: secondJob))

            // The store counts the lane's join as any other.
            let stored = try await setup.harness.store.job(id: setup.firstJob.id).job
            #expect(stored.coalesced == 2)
            #expect(stored.state == .queued)

            // A call with a body and an unknown token go to the router.
            let form = try await client.execute(uri: setup.path, method: .post,
                                                headers: [.contentType: "application/x-www-form-urlencoded"],
                                                body: ByteBuffer(string: "SERVICE_TAG=x"))
            #expect(form.status == .accepted)
            let unknown = try await client.execute(uri: "/api/stacks/webhooks/\(WebhookToken.generate().rawValue)", method: .post)
            #expect(unknown.status == .notFound)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 1)
            // A call that changes the deploy takes the store's writer: the lane answers it once written.
            let tagged = try await client.execute(uri: setup.path + "?tag=v2", method: .post)
            #expect(tagged.status == .accepted)
            #expect(Set(tagged.headers.map(\.name)) == Set(first.headers.map(\.name)))
            #expect(tagged.headers[.location] == "/api/jobs/\(setup.firstJob.id)")
            let taggedJob = try Self.job(tagged.body)
            #expect(taggedJob["coalesced"] as? Int == 4)
            #expect(((taggedJob["trigger"] as? [String: Any])?["params"] as? [String: String])?["tag"] == "v2")
            #expect(setup.lane.answered.load(ordering: .relaxed) == 2)
            #expect(try await setup.harness.store.job(id: setup.firstJob.id).job.trigger.params["tag"] == "v2",
                    "the change is on disk when it is answered")
            // And the same call as before joins the changed deploy in memory.
            let again = try await client.execute(uri: setup.path + "?tag=v2", method: .post)
            #expect(try Self.job(again.body)["coalesced"] as? Int == 5)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 3)
            // A target with a fragment goes to the router, whose URI ends the query at the `#`:
            // `FOO=a#b` is `FOO=a` there, a change to the deploy that `FOO=a%23b` queued.
            let port = try #require(client.port)
            func post(_ target: String) async throws -> [String: Any] {
                let replies = try await PipelinedHTTP.exchange(
                    port: port, requests: "POST \(target) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", count: 1)
                return try #require(replies.first?.json?["job"] as? [String: Any])
            }
            let escaped = try await post(setup.path + "?FOO=a%23b")
            #expect(((escaped["trigger"] as? [String: Any])?["params"] as? [String: String])?["FOO"] == "a#b")
            let fragment = try await post(setup.path + "?FOO=a#b")
            #expect(((fragment["trigger"] as? [String: Any])?["params"] as? [String: String])?["FOO"] == "a")
            #expect(fragment["coalesced"] as? Int == 7)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 4)
        }
        await setup.harness.stop()
    }

    @Test func pipelinedRequestsAreAnsweredInTheirOrder() async throws {
        let setup = try await Self.setUp()
        try await Self.application(setup).test(.live) { client in
            let port = try #require(client.port)
            _ = try await client.execute(uri: setup.path, method: .post)  // makes the queued deploy joinable
            let post = "POST \(setup.path) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            let health = "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
            // The router's answer to the health check takes a task; the joins after it must wait for it.
            let replies = try await PipelinedHTTP.exchange(port: port, requests: post + health + post + post + health + post, count: 6)
            #expect(replies.map(\.status) == [202, 200, 202, 202, 200, 202])
            #expect(replies.compactMap { $0.json?["job"] as? [String: Any] }.map { $0["coalesced"] as? Int } == [2, 3, 4, 5])
            // The first join was answered on the lane; the rest came behind a request the router had.
            #expect(setup.lane.answered.load(ordering: .relaxed) == 1)
            // One request at a time, every join is the lane's.
            for _ in 0..<3 { _ = try await PipelinedHTTP.exchange(port: port, requests: post, count: 1) }
            #expect(setup.lane.answered.load(ordering: .relaxed) == 4)
            // A request that asks to close the connection goes to the router, which closes it.
            let closing = try await PipelinedHTTP.exchange(
                port: port, requests: "POST \(setup.path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + post, count: 1, untilClosed: true)
            #expect(closing.map(\.status) == [202])
            #expect(setup.lane.answered.load(ordering: .relaxed) == 4)
            // A call the store writes holds back what came after it until it is answered, here for
            // 0.5 s that the writer is kept busy (the health check only reads: unheld, it would be
            // answered first).
            let busy = Task { try await setup.harness.store.db.write { _ in Thread.sleep(forTimeInterval: 0.5) } }
            try await Task.sleep(for: .milliseconds(100))
            // The second call changes the deploy again: taken from the backlog, it is parked in turn.
            func tagged(_ tag: String) -> String { "POST \(setup.path)?tag=\(tag) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" }
            let behind = try await PipelinedHTTP.exchange(port: port, requests: tagged("v7") + tagged("v8") + health + post, count: 4)
            try await busy.value
            #expect(behind.map(\.status) == [202, 202, 200, 202])
            let jobs = behind.compactMap { $0.json?["job"] as? [String: Any] }
            #expect(jobs.map { $0["coalesced"] as? Int } == [10, 11, 12])
            #expect(jobs.map { ($0["trigger"] as? [String: Any])?["params"] as? [String: String] }.map { $0?["tag"] } == ["v7", "v8", "v8"])
            #expect(setup.lane.answered.load(ordering: .relaxed) == 6)
        }
        await setup.harness.stop()
    }

    @Test func aNewJobIsClaimedOnTheLaneAndRunByItsConnectedAgent() async throws {
        let harness = try await LinkHarness()
        let api = harness.makeAPI(publicURL: Self.publicURL, label: "lane-test")
        let lane = try #require(api.makeWebhookLane(serverName: "wharf"))
        let (_, _, stacks, agent) = try await ClaimAtIntakeTests.idleStacks(harness, count: 1, keep: true)
        let token = WebhookToken.generate().rawValue
        _ = try await harness.store.setWebhookToken(stackId: stacks[0].id, token: token, publicURL: Self.publicURL)
        _ = try await harness.store.stack(webhookToken: token, publicURL: Self.publicURL)  // cached, as after a first call
        let app = Application(responder: api.makeResponder(), server: .wharf(lane: lane),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "wharf"))
        try await app.test(.live) { client in
            let response = try await client.execute(uri: "/api/stacks/webhooks/\(token)?tag=v2", method: .post)
            #expect(response.status == .accepted)
            #expect(lane.answered.load(ordering: .relaxed) == 1)
            let job = try Self.job(response.body)
            let id = try #require(job["id"] as? String)
            #expect(response.headers[.location] == "/api/jobs/\(id)")
            // Claimed in the transaction that stored it, and handed to the dispatcher: its agent runs it.
            #expect(job["state"] as? String == "dispatched")
            #expect(job["coalesced"] as? Int == 0)
            let ended = try await harness.dispatcher.waitForFinish(jobId: id, timeout: .seconds(20))
            #expect(ended.state == .succeeded)
            #expect(ended.plan.services.map(\.image).allSatisfy { $0.hasSuffix(":v2") }, "\(ended.plan)")
        }
        agent?.cancel()
        _ = try? await agent?.value
        await harness.stop()
    }

    @Test func aCallTheStoreRefusesIsAnsweredByTheRouter() async throws {
        // 2 calls a token: the router's answer below needs the token the lane took and gave back.
        let setup = try await Self.setUp(limiters: Self.slowLimiters)
        try await Self.application(setup).test(.live) { client in
            #expect(try await client.execute(uri: setup.path, method: .post).status == .accepted)  // cached now
            // A remove queued: the stack takes no new deploy, and its queued one no more joins.
            _ = try await setup.harness.store.enqueueJob(stackId: setup.stack.id, request: JobRequest(
                kind: .remove, plan: [], pull: false, trigger: JobTrigger(source: "api"), coalesce: false))
            let refused = try await client.execute(uri: setup.path + "?tag=v2", method: .post)
            #expect(refused.status == .conflict)
            let body = try JSONSerialization.jsonObject(with: Data(buffer: refused.body)) as? [String: Any]
            #expect((body?["error"] as? [String: Any])?["code"] as? String == "stack_removing", "\(String(describing: body))")
            #expect(setup.lane.answered.load(ordering: .relaxed) == 0)
            #expect(setup.lane.handedOn.load(ordering: .relaxed) == 1, "taken on the lane, failed by the store, then the router's")
            let jobs = try await setup.harness.store.jobs(stackId: setup.stack.id, state: nil, limit: 10)
            #expect(jobs.count == 2, "the first deploy and the remove: \(jobs.map(\.kind))")
        }
        await setup.harness.stop()
    }

    @Test func aClientThatClosesItsSideAfterItsCallStillGetsTheAnswer() async throws {
        let setup = try await Self.setUp()
        try await Self.application(setup).test(.live) { client in
            let port = try #require(client.port)
            _ = try await client.execute(uri: setup.path, method: .post)  // cached now
            // `printf 'POST …' | nc -N`: the request, then the end of the client's stream, read while
            // the call is written (the writer held 0.5 s). Unheld, the half-close reached
            // Hummingbird first, which closed the connection before the 202.
            let busy = Task { try await setup.harness.store.db.write { _ in Thread.sleep(forTimeInterval: 0.5) } }
            try await Task.sleep(for: .milliseconds(100))
            let replies = try await PipelinedHTTP.exchange(
                port: port, requests: "POST \(setup.path)?tag=v3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                count: 1, untilClosed: true, halfClose: true)
            try await busy.value
            #expect(replies.map(\.status) == [202])
            #expect(setup.lane.answered.load(ordering: .relaxed) == 1)
        }
        await setup.harness.stop()
    }

    @Test func aCallWhoseClientResetTheConnectionWhileItWasWrittenIsStillCounted() async throws {
        let setup = try await Self.setUp()
        try await Self.application(setup).test(.live) { client in
            let port = try #require(client.port)
            _ = try await client.execute(uri: setup.path, method: .post)  // cached now; the router counts it
            func coalesced() -> String? {
                let text = String(decoding: setup.api.metrics.render(jobCounts: [:], connectedAgents: 0, environmentCount: 0), as: UTF8.self)
                return text.split(separator: "\n").first { $0.hasPrefix(#"wharf_webhook_calls_total{outcome="coalesced"}"#) }.map(String.init)
            }
            #expect(coalesced()?.hasSuffix(" 1") == true, "\(String(describing: coalesced()))")
            // The call is written while the writer is held; its client resets the connection meanwhile.
            let busy = Task { try await setup.harness.store.db.write { _ in Thread.sleep(forTimeInterval: 0.5) } }
            try await Task.sleep(for: .milliseconds(100))
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            let request = Array("POST \(setup.path)?tag=v4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8)
            #expect(write(fd, request, request.count) == request.count)
            try await Task.sleep(for: .milliseconds(100))
            var reset = linger(l_onoff: 1, l_linger: 0)  // close sends a reset
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            close(fd)
            try await busy.value
            // Written, and counted once the lane has had its answer back.
            let deadline = ContinuousClock.now + .seconds(5)
            while coalesced()?.hasSuffix(" 2") != true, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(coalesced()?.hasSuffix(" 2") == true, "\(String(describing: coalesced()))")
            #expect(try await setup.harness.store.job(id: setup.firstJob.id).job.trigger.params["tag"] == "v4")
        }
        await setup.harness.stop()
    }

    /// What the lane did with a call: "passOn", "accepted", or once the store is done "written"
    /// or "handed on".
    static func take(_ api: API, _ token: Substring, _ query: Substring?, from address: String = "127.0.0.9") async -> String {
        await withCheckedContinuation { continuation in
            let take = api.takeOnLane(token: token, query: query, headers: [:], clientAddress: address) { made in
                continuation.resume(returning: made == nil ? "handed on" : "written")
            }
            switch take {
            case .passOn: continuation.resume(returning: "passOn")
            case .accepted: continuation.resume(returning: "accepted")
            case .later: break
            }
        }
    }

    @Test func aCallHandedOnGivesBackTheLimitsTokens() async throws {
        // 2 calls a token, 5 an address, then 429 (for 1,000 s: no refill however slow the machine).
        let setup = try await Self.setUp(limiters: Self.slowLimiters)
        let token = Substring(setup.path.split(separator: "/").last!)
        let limiters = try #require(setup.api.webhookLimiters)
        // The token's stack is not cached yet: handed on, nothing taken.
        #expect(await Self.take(setup.api, token, nil) == "passOn")
        _ = try await setup.harness.store.stack(webhookToken: String(token), publicURL: Self.publicURL)
        // Cached, but the stack is being removed: the store refuses the new deploy, and the router
        // is to answer the call; the limits' tokens taken for it are given back.
        _ = try await setup.harness.store.enqueueJob(stackId: setup.stack.id, request: JobRequest(
            kind: .remove, plan: [], pull: false, trigger: JobTrigger(source: "api"), coalesce: false))
        #expect(await Self.take(setup.api, token, "tag=v9") == "handed on")
        #expect(await Self.take(setup.api, token, "tag=v9") == "handed on")
        #expect(setup.lane.answered.load(ordering: .relaxed) == 0)
        #expect(limiters.token.acquire(String(token)) == .allowed)
        #expect(limiters.token.acquire(String(token)) == .allowed)
        // The token's limit reached: handed on, and the address's token given back.
        #expect(await Self.take(setup.api, token, "tag=v9") == "passOn")
        #expect(limiters.token.acquire(String(token)) != .allowed)
        for _ in 0..<5 { #expect(limiters.address.acquire("127.0.0.9") == .allowed) }
        #expect(limiters.address.acquire("127.0.0.9") != .allowed)
        await setup.harness.stop()
    }

    @Test func overTheLimitTheRouterAnswers429() async throws {
        // 2 calls a token, then 429. At 1 call a second, a loaded CI machine refilled the bucket
        // between the calls.
        let setup = try await Self.setUp(limiters: Self.slowLimiters)
        try await Self.application(setup).test(.live) { client in
            let statuses = try await (0..<3).asyncMap { _ in try await client.execute(uri: setup.path, method: .post) }
            #expect(statuses.map(\.status) == [.accepted, .accepted, .tooManyRequests])
            #expect(statuses[2].headers[.retryAfter] != nil)
            #expect(setup.lane.answered.load(ordering: .relaxed) == 1)
        }
        await setup.harness.stop()
    }

    @Test func aServerLoggingAtDebugHasNoLane() async throws {
        let setup = try await Self.setUp()
        var logger = Logger(label: "lane-test")
        logger.logLevel = .debug
        let api = API(store: setup.harness.store, dispatcher: setup.harness.dispatcher, keys: setup.harness.keys,
                      settings: setup.api.settings, adminToken: "admin-token", logger: logger, metrics: WharfMetrics())
        #expect(api.makeWebhookLane(serverName: nil) == nil)
        await setup.harness.stop()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

/// Raw HTTP/1.1 over one connection: writes the requests at once and reads `count` answers in order.
enum PipelinedHTTP {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String

        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    }

    /// With `halfClose`, the client closes its side once the requests are written.
    static func exchange(port: Int, requests: String, count: Int, untilClosed: Bool = false, halfClose: Bool = false) async throws -> [Reply] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: halfClose)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel,
                                                                configuration: .init(isOutboundHalfClosureEnabled: halfClose))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: requests))
            if halfClose { outbound.finish() }
            var received: [UInt8] = []
            var replies: [Reply] = []
            for try await part in inbound {
                received += part.readableBytesView
                while let (reply, used) = parse(received) {
                    replies.append(reply)
                    received.removeFirst(used)
                }
                if replies.count >= count, !untilClosed { return replies }
            }
            return replies
        }
    }

    /// The first complete answer (with a Content-Length) and how many bytes it took, or nil.
    static func parse(_ bytes: [UInt8]) -> (Reply, Int)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let lines = String(decoding: bytes[..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let bodyStart = headEnd + separator.count
        guard let length = headers["content-length"].flatMap(Int.init), bytes.count - bodyStart >= length else { return nil }
        let body = String(decoding: bytes[bodyStart..<(bodyStart + length)], as: UTF8.self)
        return (Reply(status: status, headers: headers, body: body), bodyStart + length)
    }
}
