extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines.
    ///
    /// The standard library's `Character.isWhitespace` does what `trimmingCharacters(in:)` with
    /// `.whitespacesAndNewlines` does here, without Foundation's `CharacterSet` (CoreFoundation and
    /// ICU code the agent would otherwise load for it).
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
