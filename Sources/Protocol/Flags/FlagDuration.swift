/// Parses the durations `wharf-agent` and `wharf-server` take in flags (`--checkin-interval`,
/// `--simulate`, `--job-retention`, `--agent-lost-after`): `500ms`, `30s`, `5m`, `1h`, `30d`.
public enum FlagDuration {
    /// The longest duration taken, in seconds (about 31 years), as the `wharf` CLI: longer ones are
    /// refused rather than overflowing the milliseconds count.
    public static let limit = 1e9

    /// The duration `text` names, or nil when it is not one or is not under ``limit`` seconds.
    public static func parse(_ text: String) -> Duration? {
        // `ms` before `s`: both are suffixes of `500ms`.
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value * scale < limit else { return nil }
            return .milliseconds(Int64(value * scale * 1000))
        }
        return nil
    }

    /// `parse` in seconds for a flag that also takes `off` (nil): `.none` when `text` is neither
    /// `off` nor a duration over zero.
    public static func secondsOrOff(_ text: String) -> Double?? {
        if text == "off" { return .some(nil) }
        guard let duration = parse(text), duration > .zero else { return .none }
        let (seconds, attoseconds) = duration.components
        return .some(Double(seconds) + Double(attoseconds) / 1e18)
    }
}
