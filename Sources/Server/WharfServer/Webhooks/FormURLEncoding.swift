/// Decoding of `application/x-www-form-urlencoded` text: HTML form bodies and query strings.
///
/// Follows the WHATWG URL standard, as browsers, Go's `url.ParseQuery` (so Portainer) and
/// most HTTP clients do: pairs are separated by `&`, a pair without `=` has an empty value,
/// empty pairs are skipped, `+` means a space and `%XX` a byte. Unlike the standard, a
/// malformed `%` escape or bytes that are not UTF-8 are an error rather than passed through:
/// a webhook must not redeploy with a value the caller did not mean.
public enum FormURLEncoding {
    /// Why a form or query string could not be decoded.
    public enum DecodingError: Error, Sendable, Equatable {
        /// A `%` not followed by two hex digits; `near` is the pair it was in.
        case badPercentEscape(near: String)
        /// The decoded bytes of a name or value are not UTF-8.
        case notUTF8(near: String)
    }

    /// Decodes `text` into its name/value pairs, in order, repeats included.
    public static func decode(_ text: some StringProtocol) throws(DecodingError) -> [(name: String, value: String)] {
        try self.decode(bytes: Array(text.utf8))
    }

    /// Decodes UTF-8 `bytes` (a request body) into its name/value pairs, in order.
    public static func decode(bytes: some Collection<UInt8>) throws(DecodingError) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let name: Array<UInt8>.SubSequence
            let value: Array<UInt8>.SubSequence
            let pairBytes = Array(pair)
            if let equals = pairBytes.firstIndex(of: UInt8(ascii: "=")) {
                name = pairBytes[..<equals]
                value = pairBytes[(equals + 1)...]
            } else {
                name = pairBytes[...]
                value = []
            }
            pairs.append((try self.unescape(name, pair: pairBytes), try self.unescape(value, pair: pairBytes)))
        }
        return pairs
    }

    private static func unescape(_ bytes: ArraySlice<UInt8>, pair: [UInt8]) throws(DecodingError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
                index += 1
            case UInt8(ascii: "%"):
                guard
                    index + 2 < bytes.endIndex,
                    let high = self.hexValue(bytes[index + 1]),
                    let low = self.hexValue(bytes[index + 2])
                else {
                    throw .badPercentEscape(near: self.preview(pair))
                }
                output.append(high << 4 | low)
                index += 3
            default:
                output.append(byte)
                index += 1
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw .notUTF8(near: self.preview(pair))
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The start of a raw pair, for an error message; at most 40 bytes, never invalid UTF-8.
    private static func preview(_ pair: [UInt8]) -> String {
        let text = String(decoding: pair.prefix(40), as: UTF8.self)
        return pair.count > 40 ? text + "…" : text
    }
}
