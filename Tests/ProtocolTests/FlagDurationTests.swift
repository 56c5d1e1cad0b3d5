import Testing
import WharfAgent

struct AgentDurationTests {
    @Test(arguments: [
        ("30s", Duration.seconds(30)),
        ("500ms", .milliseconds(500)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("0s", .zero),
        ("999999999s", .seconds(999_999_999)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(AgentDuration.parse(text) == expected)
    }

    /// Too long for the milliseconds count (`--checkin-interval 1e16s` used to trap) or not durations at all.
    @Test(arguments: ["1e16s", "1e9s", "300000h", "infs", "nans", "-5s", "30", "fast", "s"])
    func nonDurationsAreRefused(text: String) {
        #expect(AgentDuration.parse(text) == nil)
    }
}
