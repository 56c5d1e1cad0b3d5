import Dispatch
#if canImport(Glibc)
import Glibc
#endif

extension AgentHTTPClient {
    /// One request over one plain TCP connection (`Connection: close`), on a Dispatch thread:
    /// the calls block (resolution, connect, poll) and must not hold a cooperative thread.
    func sendOverSocket(_ request: AgentHTTPRequest, to target: Target) async throws -> AgentHTTPResponse {
        let bytes = Self.encode(request, target: target)
        let deadline = ContinuousClock.now + timeout
        let limit = responseLimit
        let timeout = self.timeout
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result {
                    try SocketExchange(host: target.host, port: target.port, deadline: deadline, timeout: timeout)
                        .run(request: bytes, responseLimit: limit)
                })
            }
        }
    }

    /// The request's bytes: request line, header fields, body.
    static func encode(_ request: AgentHTTPRequest, target: Target) -> [UInt8] {
        var head = "\(request.method) \(target.requestTarget) HTTP/1.1\r\nHost: \(target.hostHeader)\r\n"
        head += "User-Agent: wharf-agent/\(WharfAgentVersion.current)\r\nConnection: close\r\n"
        for field in request.headers where !Self.clientOwned(field.name) {
            head += "\(field.name): \(field.value)\r\n"
        }
        if let body = request.body {
            head += "Content-Length: \(body.count)\r\n"
        } else if request.method != "GET" && request.method != "HEAD" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (request.body ?? [])
    }

    private static func clientOwned(_ name: String) -> Bool {
        ["host", "content-length", "connection", "transfer-encoding"].contains(name.lowercased())
    }
}

/// The blocking socket work of one exchange, bounded by a deadline.
private struct SocketExchange {
    let host: String
    let port: Int
    let deadline: ContinuousClock.Instant
    let timeout: Duration

    func run(request: [UInt8], responseLimit: Int) throws -> AgentHTTPResponse {
        let fd = try connect()
        defer { close(fd) }
        try sendAll(fd, request)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            if let response = try HTTPResponseParser.parse(received, complete: false) { return response }
            try wait(fd, for: Int16(POLLIN))
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                throw AgentHTTPError(.unreachable, "reading from \(host):\(port): \(Self.describe(errno))")
            }
            if count == 0 {
                guard let response = try HTTPResponseParser.parse(received, complete: true) else {
                    throw AgentHTTPError(.badResponse, "\(host):\(port) closed the connection before answering")
                }
                return response
            }
            received += buffer[0..<count]
            guard received.count <= responseLimit + (64 << 10) else {
                throw AgentHTTPError(.badResponse, "the answer from \(host):\(port) is over \(responseLimit) bytes")
            }
        }
    }

    /// Resolves the host and connects to the first address that accepts, within the deadline.
    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw AgentHTTPError(.unreachable, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node?.pointee {
            node = info.ai_next
            let fd = socket(info.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            info.ai_protocol)
            guard fd >= 0 else { lastError = Self.describe(errno); continue }
            if Glibc.connect(fd, info.ai_addr, info.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else { lastError = Self.describe(errno); close(fd); continue }
            do {
                try wait(fd, for: Int16(POLLOUT))
            } catch {
                close(fd)
                throw error
            }
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if socketError == 0 { return fd }
            lastError = Self.describe(socketError)
            close(fd)
        }
        throw AgentHTTPError(.unreachable, "cannot connect to \(host):\(port): \(lastError)")
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { try wait(fd, for: Int16(POLLOUT)); continue }
                throw AgentHTTPError(.unreachable, "sending to \(host):\(port): \(Self.describe(errno))")
            }
            offset += count
        }
    }

    /// Waits until `fd` is ready for `events`, or throws when the deadline passes.
    private func wait(_ fd: Int32, for events: Int16) throws {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                throw AgentHTTPError(.timedOut, "\(host):\(port) did not answer within \(timeout)")
            }
            let (seconds, attoseconds) = left.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return }
            if ready < 0, errno != EINTR {
                throw AgentHTTPError(.unreachable, "waiting for \(host):\(port): \(Self.describe(errno))")
            }
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
