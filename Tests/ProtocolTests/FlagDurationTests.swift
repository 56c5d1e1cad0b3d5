import Testing
import WharfProtocol

struct FlagDurationTests {
    @Test(arguments: [
        ("30s", Duration.seconds(30)),
        ("500ms", .milliseconds(500)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("0s", .zero),
        ("30d", .seconds(30 * 86_400)),
        ("999999999s", .seconds(999_999_999)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(FlagDuration.parse(text) == expected)
    }

    /// Too long for the milliseconds count (`--checkin-interval 1e16s` used to trap) or not durations at all.
    @Test(arguments: ["1e16s", "1e9s", "300000h", "infs", "nans", "-5s", "30", "fast", "s"])
    func nonDurationsAreRefused(text: String) {
        #expect(FlagDuration.parse(text) == nil)
    }

    /// `wharf-server`'s retention and lost-agent flags: `off`, or a duration over zero.
    @Test func secondsOrOff() {
        #expect(FlagDuration.secondsOrOff("off") == .some(nil))
        #expect(FlagDuration.secondsOrOff("24h") == .some(86_400))
        #expect(FlagDuration.secondsOrOff("1500ms") == .some(1.5))
        #expect(FlagDuration.secondsOrOff("0s") == .none)
        #expect(FlagDuration.secondsOrOff("soon") == .none)
    }
}
