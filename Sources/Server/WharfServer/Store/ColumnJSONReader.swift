import WharfProtocol

/// Reads the store's own JSON columns (env, pins, plan, trigger) without `JSONDecoder`, which was
/// the biggest single cost of finishing a job. It knows a strict subset: objects, arrays, `null` and
/// strings (no `\u` escapes), no whitespace and no numbers — what `JSONColumn.encode` writes for
/// ordinary values. Anything else (a `\u` escape, a number, a space) makes it give up and return
/// nil, and `JSONColumn.decode` then asks `JSONDecoder`, so it never reads a value differently.
struct ColumnJSONReader {
    indirect enum Value {
        case string(String)
        case object([(String, Value)])
        case array([Value])
        case null
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// The value of a whole document, or nil when it is outside the subset.
    static func read(_ text: String) -> Value? {
        var reader = ColumnJSONReader(text)
        guard let value = reader.value(depth: 0), reader.index == reader.bytes.count else { return nil }
        return value
    }

    private mutating func value(depth: Int) -> Value? {
        guard index < bytes.count, depth < 8 else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "\""): return string().map(Value.string)
        case UInt8(ascii: "{"):
            index += 1
            var members: [(String, Value)] = []
            if next(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                guard let key = string(), next(UInt8(ascii: ":")), let member = value(depth: depth + 1) else { return nil }
                members.append((key, member))
            } while next(UInt8(ascii: ","))
            return next(UInt8(ascii: "}")) ? .object(members) : nil
        case UInt8(ascii: "["):
            index += 1
            var elements: [Value] = []
            if next(UInt8(ascii: "]")) { return .array(elements) }
            repeat {
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
            } while next(UInt8(ascii: ","))
            return next(UInt8(ascii: "]")) ? .array(elements) : nil
        case UInt8(ascii: "n"):
            guard bytes.count - index >= 4, bytes[index + 1] == UInt8(ascii: "u"), bytes[index + 2] == UInt8(ascii: "l"),
                  bytes[index + 3] == UInt8(ascii: "l") else { return nil }
            index += 4
            return .null
        default:
            return nil
        }
    }

    private mutating func next(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A string with at most the two-character escapes; nil for `\u` escapes, control characters
    /// or an unterminated string.
    private mutating func string() -> String? {
        guard next(UInt8(ascii: "\"")) else { return nil }
        let start = index
        var unescaped: [UInt8]?
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                if let unescaped { return String(decoding: unescaped, as: UTF8.self) }
                return String(decoding: bytes[start..<index], as: UTF8.self)
            }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { return nil }
                if unescaped == nil { unescaped = Array(bytes[start..<index]) }
                switch bytes[index + 1] {
                case UInt8(ascii: "/"): unescaped!.append(UInt8(ascii: "/"))
                case UInt8(ascii: "\\"): unescaped!.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\""): unescaped!.append(UInt8(ascii: "\""))
                case UInt8(ascii: "n"): unescaped!.append(0x0A)
                case UInt8(ascii: "r"): unescaped!.append(0x0D)
                case UInt8(ascii: "t"): unescaped!.append(0x09)
                case UInt8(ascii: "b"): unescaped!.append(0x08)
                case UInt8(ascii: "f"): unescaped!.append(0x0C)
                default: return nil
                }
                index += 2
                continue
            }
            unescaped?.append(byte)
            index += 1
        }
        return nil
    }
}

extension ColumnJSONReader.Value {
    var strings: [String: String]? {
        guard case .object(let members) = self else { return nil }
        var result: [String: String] = [:]
        result.reserveCapacity(members.count)
        for (key, value) in members {
            guard case .string(let text) = value, result.updateValue(text, forKey: key) == nil else { return nil }
        }
        return result
    }

    var plan: JobPlan? {
        guard case .object(let members) = self, members.count == 1, members[0].0 == "services",
              case .array(let elements) = members[0].1 else { return nil }
        var services: [PlannedService] = []
        services.reserveCapacity(elements.count)
        for element in elements {
            guard let fields = element.strings, fields.count == 2, let name = fields["name"], let image = fields["image"] else { return nil }
            services.append(PlannedService(name: name, image: image))
        }
        return JobPlan(services: services)
    }

    var trigger: JobTrigger? {
        guard case .object(let members) = self else { return nil }
        var trigger = JobTrigger(source: "")
        var seen = Set<String>()
        for (key, value) in members {
            guard seen.insert(key).inserted else { return nil }
            switch (key, value) {
            case ("params", _): guard let params = value.strings else { return nil }; trigger.params = params
            case ("source", .string(let text)): trigger.source = text
            case ("remoteAddr", .string(let text)): trigger.remoteAddr = text
            case ("userAgent", .string(let text)): trigger.userAgent = text
            default: return nil
            }
        }
        return seen.contains("source") && seen.contains("params") ? trigger : nil
    }
}
