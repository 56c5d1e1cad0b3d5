/// Appends JSON to a byte array the way a `JSONEncoder` with `.sortedKeys` writes it, for the few
/// shapes sent or stored for every job, where the generic encoder's tree was a measurable cost.
/// Callers write keys in sorted order themselves; `object(_:)` sorts a map's keys as the encoder
/// does. Tests compare the output with `JSONEncoder`'s byte for byte.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// Whether `/` is written `\/` (a `JSONEncoder` without `.withoutEscapingSlashes`).
    public var escapesSlashes: Bool

    public init(capacity: Int = 256, escapesSlashes: Bool = true) {
        bytes.reserveCapacity(capacity)
        self.escapesSlashes = escapesSlashes
    }

    /// The text written so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Bytes that are valid JSON where they go (digits, punctuation).
    public mutating func append(_ byte: UInt8) {
        bytes.append(byte)
    }

    public mutating func append(contentsOf text: some Sequence<UInt8>) {
        bytes.append(contentsOf: text)
    }

    public mutating func int(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    /// A map of strings, keys sorted.
    public mutating func object(_ values: [String: String]) {
        raw("{")
        for (index, key) in values.keys.sorted().enumerated() {
            if index > 0 { raw(",") }
            string(key); raw(":"); string(values[key]!)
        }
        raw("}")
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX` escapes,
    /// `/` as `\/` when `escapesSlashes`, everything else as UTF-8. Runs between escapes are
    /// copied whole (most strings have none).
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var run = 0  // The first byte not written yet.
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                        || (byte == UInt8(ascii: "/") && escapesSlashes) else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<index]))
                escape(byte)
                run = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): raw("\\\"")
        case UInt8(ascii: "\\"): raw("\\\\")
        case UInt8(ascii: "/"): raw("\\/")
        case 0x0A: raw("\\n")
        case 0x0D: raw("\\r")
        case 0x09: raw("\\t")
        case 0x08: raw("\\b")
        case 0x0C: raw("\\f")
        default:
            raw("\\u00")
            bytes.append(Self.hex[Int(byte >> 4)])
            bytes.append(Self.hex[Int(byte & 0x0F)])
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)
}
