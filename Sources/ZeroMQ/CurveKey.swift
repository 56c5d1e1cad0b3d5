import CZeroMQ

/// A 32-byte CURVE key, public or secret.
public struct CurveKey: Sendable, Hashable, CustomStringConvertible {
    /// The raw key.
    public let bytes: [UInt8]

    /// Wraps 32 raw bytes.
    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else {
            throw ZMQError(errno: 22, operation: "CurveKey", message: "a CURVE key is 32 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Decodes the 40-character Z85 text form.
    public init(z85: String) throws {
        let text = Array(z85.utf8)
        guard text.count == 40 else {
            throw ZMQError(errno: 22, operation: "CurveKey", message: "a Z85 CURVE key is 40 characters, got \(text.count)")
        }
        var decoded = [UInt8](repeating: 0, count: 32)
        // zmq_z85_decode wants a NUL-terminated string.
        let ok = (text + [0]).withUnsafeBufferPointer { source in
            decoded.withUnsafeMutableBufferPointer { target in
                source.baseAddress!.withMemoryRebound(to: CChar.self, capacity: source.count) {
                    zmq_z85_decode(target.baseAddress, $0) != nil
                }
            }
        }
        guard ok else {
            throw ZMQError(errno: 22, operation: "CurveKey", message: "not a valid Z85 key")
        }
        self.bytes = decoded
    }

    /// The 40-character Z85 text form.
    public var z85: String {
        // 32 bytes encode to 40 characters plus the terminating NUL.
        var buffer = [CChar](repeating: 0, count: 41)
        bytes.withUnsafeBufferPointer { source in
            _ = zmq_z85_encode(&buffer, source.baseAddress, source.count)
        }
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The Z85 form, so keys print the way operators paste them.
    public var description: String { z85 }
}

/// A CURVE key pair.
public struct CurveKeyPair: Sendable, Hashable {
    /// The key peers use to recognise this side.
    public let publicKey: CurveKey
    /// The key that must stay on this side's disk.
    public let secretKey: CurveKey

    /// Pairs existing keys.
    public init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Derives the pair from a secret key.
    public init(secretKey: CurveKey) throws {
        var publicText = [CChar](repeating: 0, count: 41)
        let secretText = Array(secretKey.z85.utf8CString)
        guard zmq_curve_public(&publicText, secretText) == 0 else { throw ZMQError.last("zmq_curve_public") }
        self.publicKey = try CurveKey(z85: String(decoding: publicText.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        self.secretKey = secretKey
    }

    /// Makes a new random key pair (libzmq uses the OS CSPRNG).
    public static func generate() throws -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return CurveKeyPair(publicKey: try CurveKey(z85: text(publicText)), secretKey: try CurveKey(z85: text(secretText)))
    }
}
