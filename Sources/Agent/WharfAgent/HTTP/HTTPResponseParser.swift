/// Reads an HTTP/1.x response from the bytes received so far: status line, header fields, and a
/// body framed by `Content-Length`, `Transfer-Encoding: chunked`, or the end of the connection.
enum HTTPResponseParser {
    /// The response, or nil when more bytes are needed; `complete` says the peer closed the connection.
    static func parse(_ bytes: [UInt8], complete: Bool) throws -> AgentHTTPResponse? {
        var start = 0
        while true {
            guard let headEnd = find([13, 10, 13, 10], in: bytes, from: start) else {
                if complete { throw AgentHTTPError(.badResponse, "the answer ended inside its header") }
                return nil
            }
            let head = String(decoding: bytes[start..<headEnd], as: UTF8.self)
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
                throw AgentHTTPError(.badResponse, "not an HTTP/1.x answer: \(statusLine.prefix(80))")
            }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else {
                    throw AgentHTTPError(.badResponse, "malformed header line: \(line.prefix(80))")
                }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingWhitespace()
                headers[name] = headers[name].map { "\($0), \(value)" } ?? value
            }
            let bodyStart = headEnd + 4
            if (100..<200).contains(status) {
                // An interim answer (100 Continue): the real one follows.
                start = bodyStart
                continue
            }
            if status == 204 || status == 304 {
                return AgentHTTPResponse(status: status, headers: headers, body: [])
            }
            if let encoding = headers["transfer-encoding"], encoding.lowercased().contains("chunked") {
                guard let body = try dechunk(bytes, from: bodyStart) else {
                    if complete { throw AgentHTTPError(.badResponse, "the answer ended inside a chunk") }
                    return nil
                }
                return AgentHTTPResponse(status: status, headers: headers, body: body)
            }
            if let text = headers["content-length"] {
                guard let length = Int(text), length >= 0 else {
                    throw AgentHTTPError(.badResponse, "bad Content-Length: \(text)")
                }
                guard bytes.count - bodyStart >= length else {
                    if complete { throw AgentHTTPError(.badResponse, "the answer ended \(length - (bytes.count - bodyStart)) bytes short") }
                    return nil
                }
                return AgentHTTPResponse(status: status, headers: headers, body: Array(bytes[bodyStart..<(bodyStart + length)]))
            }
            guard complete else { return nil }
            return AgentHTTPResponse(status: status, headers: headers, body: Array(bytes[bodyStart...]))
        }
    }

    /// The decoded body of a chunked message starting at `offset`, or nil if incomplete.
    private static func dechunk(_ bytes: [UInt8], from offset: Int) throws -> [UInt8]? {
        var body: [UInt8] = []
        var position = offset
        while true {
            guard let lineEnd = find([13, 10], in: bytes, from: position) else { return nil }
            let line = String(decoding: bytes[position..<lineEnd], as: UTF8.self)
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map { $0.trimmingWhitespace() } ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0 else {
                throw AgentHTTPError(.badResponse, "bad chunk size: \(line.prefix(40))")
            }
            position = lineEnd + 2
            if size == 0 {
                // Trailer fields, then an empty line.
                while true {
                    guard let end = find([13, 10], in: bytes, from: position) else { return nil }
                    if end == position { return body }
                    position = end + 2
                }
            }
            guard bytes.count >= position + size + 2 else { return nil }
            body += bytes[position..<(position + size)]
            guard bytes[position + size] == 13, bytes[position + size + 1] == 10 else {
                throw AgentHTTPError(.badResponse, "a chunk does not end with CRLF")
            }
            position += size + 2
        }
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        var index = start
        while index <= bytes.count - needle.count {
            if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
