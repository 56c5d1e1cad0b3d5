import Foundation

/// Durations in `wharf-server`'s flags: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `24h`, `30d`).
public enum ServerDuration {
    /// The seconds `text` names, or nil when it is not a positive duration under about 31 years.
    public static func parse(_ text: String) -> TimeInterval? {
        let units: [(String, Double)] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value > 0, value * scale < 1e9 else { return nil }
            return value * scale
        }
        return nil
    }

    /// `parse`, with `off` for nil; `.none` when `text` is neither.
    public static func parseOrOff(_ text: String) -> TimeInterval?? {
        text == "off" ? .some(nil) : parse(text).map { .some($0) }
    }
}
