import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for chromedriver on 127.0.0.1.
///
/// Why not URLSession: FoundationNetworking in Swift 6.3 rejects header lines without a space
/// after the colon (`Content-Length:250`), which is how chromedriver writes every header, and fails
/// the request with "Failed writing header" (swift-corelibs-foundation #5527, fixed for 6.4).
/// Wharf's own API is still called through URLSession. Each request is one short-lived connection
/// (`Connection: close`); blocking socket calls run on a dispatch queue, never on the cooperative pool.
enum LoopbackHTTP {
    private static let queue = DispatchQueue(label: "wharf.uitests.loopback-http", attributes: .concurrent)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends one request and answers the status code and body.
    static func send(port: Int, method: String, path: String, body: Data?, timeout: Duration = .seconds(120)) async throws -> (status: Int, body: Data) {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try blockingSend(port: port, method: method, path: path, body: body, timeout: timeout) })
            }
        }
    }

    private static func blockingSend(port: Int, method: String, path: String, body: Data?, timeout: Duration) throws -> (status: Int, body: Data) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)") }

        let payload = body ?? Data()
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        if body != nil { head += "Content-Type: application/json; charset=utf-8\r\n" }
        head += "Content-Length: \(payload.count)\r\n\r\n"
        try writeAll(fd, Data(head.utf8) + payload)

        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var headerEnd: Int?
        var contentLength: Int?
        var status = 0
        while true {
            if let end = headerEnd, let length = contentLength, received.count >= end + length { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw Failure(description: "\(method) \(path): no answer from chromedriver (errno \(errno))")
            }
            received.append(contentsOf: buffer[0..<count])
            if headerEnd == nil, let range = find([13, 10, 13, 10], in: received) {
                headerEnd = range + 4
                let header = String(decoding: received[0..<range], as: UTF8.self)
                let lines = header.components(separatedBy: "\r\n")
                let statusParts = lines.first?.split(separator: " ") ?? []
                status = statusParts.count > 1 ? Int(statusParts[1]) ?? 0 : 0
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    if line[..<colon].lowercased() == "content-length" {
                        contentLength = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                    }
                }
            }
        }
        guard let end = headerEnd else { throw Failure(description: "\(method) \(path): chromedriver closed the connection without an answer") }
        let bodyBytes = received[end...].prefix(contentLength ?? Int.max)
        return (status, Data(bodyBytes))
    }

    private static func writeAll(_ fd: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw Failure(description: "sending to chromedriver failed: errno \(errno)") }
                offset += written
            }
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}
