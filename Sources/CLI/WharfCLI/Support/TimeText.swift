import Foundation

/// Reads the API's RFC 3339 times and renders them for people.
enum TimeText {
    /// The date an RFC 3339 string names, with or without fractional seconds.
    static func parse(_ text: String?) -> Date? {
        guard let text, !text.isEmpty else { return nil }
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    /// `12s ago`, `5m ago`, `3h ago`, `2d ago`, or `never`.
    static func ago(_ text: String?, now: Date = Date()) -> String {
        guard let date = parse(text) else { return text ?? "never" }
        let seconds = Int(now.timeIntervalSince(date).rounded())
        if seconds < 1 { return "just now" }
        if seconds < 60 { return "\(seconds)s ago" }
        if seconds < 3600 { return "\(seconds / 60)m ago" }
        if seconds < 86400 { return "\(seconds / 3600)h ago" }
        return "\(seconds / 86400)d ago"
    }

    /// How long a job took (or has been going), or `-`.
    static func elapsed(from start: String?, to end: String?, now: Date = Date()) -> String {
        guard let start = parse(start) else { return "-" }
        let end = parse(end) ?? now
        // The API's times have whole seconds, so tenths would be made up.
        let seconds = end.timeIntervalSince(start).rounded()
        if seconds < 1 { return "<1s" }
        return seconds < 10 ? "\(Int(seconds))s" : DurationParser.format(seconds: seconds)
    }
}
