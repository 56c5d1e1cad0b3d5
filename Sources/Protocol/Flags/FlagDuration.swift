/// Parses the durations `wharf-agent` takes (`--checkin-interval`, `--simulate`): `500ms`, `30s`,
/// `5m`, `1h`.
public enum AgentDuration {
    /// The longest duration taken, in seconds (about 31 years), as the `wharf` CLI: longer ones are
    /// refused rather than overflowing the milliseconds count.
    public static let limit = 1e9

    /// The duration `text` names, or nil when it is not one or is not under ``limit`` seconds.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value * scale < limit else { return nil }
            return .milliseconds(Int64(value * scale * 1000))
        }
        return nil
    }
}
