import Testing
@testable import WharfAgent

/// When the agent pings: only when its link has been quiet (`AgentRuntime.pingDue`).
struct PingTests {
    let now = ContinuousClock.now
    let interval = Duration.seconds(2)

    func due(ping: Double, sent: Double, heard: Double?, edge: Bool = false) -> Bool {
        AgentRuntime.pingDue(now: now, lastPing: now - .seconds(ping), lastSent: now - .seconds(sent),
                             lastHeard: heard.map { now - .seconds($0) }, interval: interval, edge: edge)
    }

    @Test func anIdleLinkPingsEveryInterval() {
        #expect(due(ping: 2, sent: 2, heard: 1.9))
        #expect(!due(ping: 1, sent: 1, heard: 0.9))
    }

    @Test func aBusyLinkNeedsNoPing() {
        // Sent a result 0.5 s ago and heard its acknowledgement: both sides know the other is alive.
        #expect(!due(ping: 5, sent: 0.5, heard: 0.2))
    }

    @Test func silenceEitherWayBringsThePingBack() {
        #expect(due(ping: 5, sent: 0.5, heard: 2.5))   // the server said nothing: is it there?
        #expect(due(ping: 5, sent: 2.5, heard: 0.2))   // this agent said nothing: tell the server
        #expect(due(ping: 5, sent: 0.5, heard: nil))   // nothing heard since the connection opened
    }

    @Test func anEdgeAgentPingsOnSchedule() {
        #expect(due(ping: 2, sent: 0.5, heard: 0.2, edge: true))
        #expect(!due(ping: 1, sent: 3, heard: 3, edge: true))
    }
}
