import Foundation

/// Parses the durations `--timeout` takes: `500ms`, `30s`, `5m`, `1h`, compounds like `1h30m`,
/// and a bare number of seconds.
public enum DurationParser {
    /// The longest duration taken, in seconds (about 31 years): longer ones are refused rather than
    /// overflowing the milliseconds count.
    public static let limit = 1e9

    /// The duration `text` names, or nil when it is not one or is not under ``limit`` seconds.
    public static func parse(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if let seconds = Double(text) {
            guard seconds >= 0, seconds < limit else { return nil }
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        var total = 0.0
        var rest = Substring(text)
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        guard total.isFinite, total < limit else { return nil }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    /// `1.2s`, `45s`, `3m12s`, `2h5m`: a short human rendering.
    public static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return format(seconds: seconds)
    }

    static func format(seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1fs", max(0, seconds)) }
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60 == 0 ? "" : "\(whole % 60)s")" }
        return "\(whole / 3600)h\(whole % 3600 / 60 == 0 ? "" : "\(whole % 3600 / 60)m")"
    }
}
