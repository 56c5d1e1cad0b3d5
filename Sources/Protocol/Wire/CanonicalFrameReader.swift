/// Reads the frames sent for every job — a `job` from the server, a `result` from an agent — in
/// the exact form `WireCodec.encode` writes them (`JSONEncoder` with sorted keys: no whitespace,
/// keys in order, optional fields left out) without `JSONDecoder`, which was the largest part of
/// handling a result on the server and of taking a job in the agent. Anything else (another key
/// order, a space, a number that is not a plain integer, a `\u` escape of a surrogate, map keys out
/// of order) makes it give up and return nil; `WireCodec` then decodes the frame with
/// `JSONDecoder` as before, so a frame is never read differently, only faster.
struct CanonicalFrameReader {
    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The result in `bytes`, or nil when the frame is not in the encoder's exact form.
    static func result(_ bytes: [UInt8]) -> JobResult? {
        var reader = CanonicalFrameReader(bytes)
        return reader.result()
    }

    /// The job in `bytes`, or nil when the frame is not in the encoder's exact form.
    static func job(_ bytes: [UInt8]) -> JobSpec? {
        var reader = CanonicalFrameReader(bytes)
        return reader.job()
    }

    private mutating func result() -> JobResult? {
        guard next(#"{"body":{"#) else { return nil }
        var error: JobError?
        if next(#""error":{"code":"#) {
            guard let code = string(), next(#","message":"#), let message = string(), next("},") else { return nil }
            error = JobError(code: code, message: message)
        }
        guard next(#""jobId":"#), let jobId = string(), next(#","services":["#) else { return nil }
        var services: [ServiceResult] = []
        if !next("]") {
            repeat {
                guard next(#"{"containers":"#), let containers = integer(), next(#","image":"#), let image = string(),
                      next(#","imageId":"#), let imageId = string(), next(#","name":"#), let name = string(), next("}") else {
                    return nil
                }
                services.append(ServiceResult(name: name, image: image, imageId: imageId, containers: containers))
            } while next(",")
            guard next("]") else { return nil }
        }
        guard next(#","state":"#), let text = string(), let state = FinalJobState(rawValue: text),
              next(#"},"type":"result","v":1}"#), index == bytes.count else { return nil }
        return JobResult(jobId: jobId, state: state, error: error, services: services)
    }

    private mutating func job() -> JobSpec? {
        guard next(#"{"body":{"compose":"#), let compose = string(), next(#","credentials":["#) else { return nil }
        var credentials: [RegistryAuth] = []
        if !next("]") {
            repeat {
                guard next(#"{"password":"#), let password = string(), next(#","registry":"#), let registry = string(),
                      next(#","username":"#), let username = string(), next("}") else {
                    return nil
                }
                credentials.append(RegistryAuth(registry: registry, username: username, password: password))
            } while next(",")
            guard next("]") else { return nil }
        }
        guard next(#","env":"#), let env = strings(), next(#","healthTimeoutSeconds":"#), let health = integer(),
              next(#","id":"#), let id = string(), next(#","images":"#), let images = strings(),
              next(#","kind":"#), let kindText = string(), let kind = JobKind(rawValue: kindText),
              next(#","pull":"#), let pull = bool(), next(#","stackId":"#), let stackId = string(),
              next(#","stackName":"#), let stackName = string(),
              next(#"},"type":"job","v":1}"#), index == bytes.count else { return nil }
        return JobSpec(id: id, kind: kind, stackId: stackId, stackName: stackName, compose: compose, env: env,
                       images: images, pull: pull, credentials: credentials, healthTimeoutSeconds: health)
    }

    /// An object of strings whose keys are in ascending order (so none repeats, as the encoder writes them).
    private mutating func strings() -> [String: String]? {
        guard next("{") else { return nil }
        var values: [String: String] = [:]
        if next("}") { return values }
        var previous: String?
        repeat {
            guard let key = string(), previous.map({ $0 < key }) ?? true, next(":"), let value = string() else { return nil }
            values[key] = value
            previous = key
        } while next(",")
        return next("}") ? values : nil
    }

    private mutating func bool() -> Bool? {
        if next("true") { return true }
        if next("false") { return false }
        return nil
    }

    /// Moves past `literal` if the bytes continue with it.
    private mutating func next(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        let matches = literal.withUTF8Buffer { literal in
            bytes.withUnsafeBufferPointer { $0[index..<(index + count)].elementsEqual(literal) }
        }
        if matches { index += count }
        return matches
    }

    /// A JSON string; nil for one that is not valid, or has an escape of a surrogate.
    private mutating func string() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        // Most strings have no escape: one copy.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\"), bytes[index] >= 0x20 {
            index += 1
        }
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "\"") {
            defer { index += 1 }
            return String(validating: bytes[start..<index], as: UTF8.self)
        }
        var text = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return nil }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    // Exactly four hex digits (no sign, which `UInt32(_:radix:)` would take).
                    guard bytes.count - index >= 4 else { return nil }
                    var value: UInt32 = 0
                    for digit in bytes[index..<(index + 4)] {
                        guard let nibble = Self.hexValue(digit) else { return nil }
                        value = value << 4 | nibble
                    }
                    guard let scalar = Unicode.Scalar(value) else { return nil }  // Surrogates are not scalars.
                    index += 4
                    text.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            case 0x00..<0x20: return nil
            default: text.append(byte)
            }
        }
        return nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// An integer as the encoder writes one: an optional `-`, then 1 to 18 digits, no leading zero.
    private mutating func integer() -> Int? {
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        if bytes.count - index >= 2, bytes[index] == UInt8(ascii: "0"), bytes[index + 1] >= UInt8(ascii: "0"), bytes[index + 1] <= UInt8(ascii: "9") {
            return nil
        }
        var value = 0
        var digits = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9"), digits < 18 {
            value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        guard digits > 0, index < bytes.count, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]),
              bytes[index] != UInt8(ascii: "."), bytes[index] != UInt8(ascii: "e"), bytes[index] != UInt8(ascii: "E") else {
            return nil
        }
        return negative ? -value : value
    }
}
