/// The secret part of a stack's webhook URL, `<public-url>/api/stacks/webhooks/<token>`:
/// a random UUID version 4, in lowercase.
///
/// Whoever knows the token can redeploy the stack, so it is a credential: `description` shows
/// only its last four characters, to keep it out of logs by accident. Use `rawValue` to build
/// the URL or to look the token up.
public struct WebhookToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The token, e.g. `"3f1c1b7e-2d4a-4c59-9b8e-0d6f2a1e5c7b"`: 36 characters, lowercase hex.
    public let rawValue: String

    /// Generates a new token from the system's cryptographically secure generator
    /// (`getrandom(2)` on Linux, `arc4random_buf` on Darwin).
    public static func generate() -> WebhookToken {
        var generator = SystemRandomNumberGenerator()
        return self.generate(using: &generator)
    }

    /// Generates a token from `generator`; only tests should pass anything but the system's.
    public static func generate(using generator: inout some RandomNumberGenerator) -> WebhookToken {
        var bytes = [UInt8](repeating: 0, count: 16)
        for chunk in 0..<2 {
            let word = generator.next() as UInt64
            for index in 0..<8 {
                bytes[chunk * 8 + index] = UInt8(truncatingIfNeeded: word >> (8 * index))
            }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // variant 10xx (RFC 9562)
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                text.append(UInt8(ascii: "-"))
            }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return WebhookToken(validated: String(decoding: text, as: UTF8.self))
    }

    /// Accepts a token taken from a request path when it has the shape of a UUID
    /// (8-4-4-4-12 hex digits, either case), lowercased; nil otherwise.
    ///
    /// This is a cheap filter, so that obviously bad tokens are answered 404 without a
    /// store lookup; it does not check the version, so tokens issued by another tool
    /// (Portainer's webhook UUIDs, say) still pass.
    public init?(_ text: some StringProtocol) {
        guard Self.isWellFormed(text) else {
            return nil
        }
        self.rawValue = text.lowercased()
    }

    private init(validated rawValue: String) {
        self.rawValue = rawValue
    }

    /// Whether `text` has the shape of a UUID: 36 ASCII characters, hyphens at offsets 8, 13,
    /// 18 and 23, hex digits elsewhere.
    public static func isWellFormed(_ text: some StringProtocol) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 36 else {
            return false
        }
        for (offset, byte) in utf8.enumerated() {
            switch offset {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return false }
            default:
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
                    UInt8(ascii: "A")...UInt8(ascii: "F"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }

    /// A redacted form for logs: `"webhook token …5c7b"`.
    public var description: String {
        "webhook token …\(self.rawValue.suffix(4))"
    }

    /// Same as `description`, so `debugPrint(token)` does not leak the token either.
    public var debugDescription: String {
        self.description
    }

    /// Hides the token from `dump` and from `#expect` failure messages.
    public var customMirror: Mirror {
        Mirror(self, children: ["rawValue": self.description])
    }
}
