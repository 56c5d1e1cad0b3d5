#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One HTTP request of the agent's few API calls (enrolment, the fleet's set-up).
public struct AgentHTTPRequest: Sendable {
    public var method: String
    /// An absolute `http://` or `https://` URL.
    public var url: String
    /// Extra header fields; `Host`, `Content-Length` and `Connection` are the client's.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?

    /// Makes a request.
    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// The answer to an ``AgentHTTPRequest``: status and body (headers only over plain sockets).
public struct AgentHTTPResponse: Sendable, Equatable {
    public var status: Int
    /// Header fields, names lower-cased; empty when the exchange went through curl.
    public var headers: [String: String]
    public var body: [UInt8]

    /// Makes a response.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why an HTTP exchange failed before a response arrived.
public struct AgentHTTPError: Error, Sendable, CustomStringConvertible {
    /// Stable reasons.
    public enum Code: String, Sendable {
        case invalidURL = "invalid_url"
        case unreachable
        case timedOut = "timed_out"
        case badResponse = "bad_response"
        case curlMissing = "curl_missing"
    }

    public var code: Code
    /// A human sentence.
    public var message: String
    public var description: String { message }

    /// Makes an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// A small HTTP/1.1 client that keeps no TLS or HTTP library in the agent's process.
///
/// The agent speaks HTTP only to enrol, once in its life, yet `URLSession` would load
/// FoundationNetworking, libcurl and its TLS, Kerberos, LDAP and SSH stacks into the long-lived
/// process (about 10 MiB of its resident memory). So `http://` URLs go over a plain POSIX socket
/// (one request per connection), and `https://` URLs through the `curl` executable as a short-lived
/// child process: TLS, the system's CA store and `HTTPS_PROXY` come from curl, and leave with it.
/// Secrets (join token, bearer token) reach curl on its standard input, never on its command line.
public struct AgentHTTPClient: Sendable {
    /// How requests travel.
    public enum Transport: Sendable {
        /// A socket for `http://`, curl for `https://`.
        case automatic
        /// curl for every URL (tests drive the curl path against a plain HTTP server).
        case curl
    }

    public var transport: Transport
    /// The whole exchange (resolve, connect, send, receive) must finish within this.
    public var timeout: Duration
    /// The curl executable: a name looked up on `PATH`, or a path.
    public var curl: String
    /// Longest response body accepted.
    public var responseLimit: Int

    /// Makes a client.
    public init(transport: Transport = .automatic, timeout: Duration = .seconds(60), curl: String = "curl",
                responseLimit: Int = 4 << 20) {
        self.transport = transport
        self.timeout = timeout
        self.curl = curl
        self.responseLimit = responseLimit
    }

    /// Sends `request` and returns the server's answer, whatever its status.
    public func send(_ request: AgentHTTPRequest) async throws -> AgentHTTPResponse {
        let target = try Target(request.url)
        if target.secure || transport == .curl {
            return try await sendWithCurl(request)
        }
        return try await sendOverSocket(request, to: target)
    }

    /// Sends a JSON body (or none) and decodes a 2xx answer as `T`; other statuses throw
    /// ``AgentHTTPStatusError`` carrying the contract's `{"error": {"code", "message"}}` if present.
    public func json<T: Decodable>(_ method: String, _ url: String, body: (some Encodable & Sendable)? = nil as [String: String]?,
                                   headers: [(name: String, value: String)] = [], as type: T.Type) async throws -> T {
        var fields = headers + [("Accept", "application/json")]
        var bytes: [UInt8]?
        if let body {
            bytes = Array(try JSONEncoder().encode(body))
            fields.append(("Content-Type", "application/json"))
        }
        let response = try await send(AgentHTTPRequest(method: method, url: url, headers: fields, body: bytes))
        guard (200..<300).contains(response.status) else { throw AgentHTTPStatusError(response) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw AgentHTTPError(.badResponse, "unexpected answer from \(method) \(url): \(error)")
        }
    }

    /// The parts of a URL the client needs.
    struct Target {
        var secure: Bool
        var host: String
        var port: Int
        /// Path and query, percent-encoded as given: the request target.
        var requestTarget: String
        /// The `Host` header: the host (IPv6 in brackets) and a port that is not the default.
        var hostHeader: String

        init(_ text: String) throws {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = url.host(percentEncoded: false), !host.isEmpty else {
                throw AgentHTTPError(.invalidURL, "not an http:// or https:// URL: \(text)")
            }
            guard url.user == nil, url.password == nil else {
                throw AgentHTTPError(.invalidURL, "credentials in the URL are not supported: \(text)")
            }
            secure = scheme == "https"
            let defaultPort = secure ? 443 : 80
            port = url.port ?? defaultPort
            guard (1...65535).contains(port) else { throw AgentHTTPError(.invalidURL, "bad port in \(text)") }
            self.host = host
            let path = url.path(percentEncoded: true)
            requestTarget = (path.isEmpty ? "/" : path) + (url.query(percentEncoded: true).map { "?" + $0 } ?? "")
            let bracketed = host.contains(":") ? "[\(host)]" : host
            hostHeader = port == defaultPort ? bracketed : "\(bracketed):\(port)"
        }
    }
}

/// A response whose status is not 2xx, with the server's error code and message when it sent them.
public struct AgentHTTPStatusError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    /// The contract's `error.code`, if the body carried one.
    public var code: String?
    /// The contract's `error.message`, if the body carried one.
    public var message: String?

    /// Reads the contract's error body from `response`.
    public init(_ response: AgentHTTPResponse) {
        struct Failure: Decodable {
            struct Body: Decodable { var code: String; var message: String }
            var error: Body
        }
        status = response.status
        let failure = try? JSONDecoder().decode(Failure.self, from: Data(response.body))
        code = failure?.error.code
        message = failure?.error.message
    }

    /// `message (code)`, or `HTTP status`.
    public var description: String {
        if let message, let code { return "\(message) (\(code))" }
        return "HTTP \(status)"
    }
}
