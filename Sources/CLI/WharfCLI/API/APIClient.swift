import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The CLI's version, sent as its User-Agent.
public enum WharfCLIVersion {
    /// The version string.
    public static let current = "0.1.0"
}

/// A raw answer from the server: status and body, kept as bytes so `--json` can print them untouched.
struct APIResponse: Sendable {
    var status: Int
    var data: Data
}

/// A client of the Wharf HTTP API.
///
/// Every failure comes out as a ``CLIError``: the server's `{"error":{"code","message"}}`, or
/// `unreachable` naming the URL that could not be reached.
struct APIClient: Sendable {
    let server: String
    let token: String?
    var timeout: TimeInterval = 30

    init(_ connection: Connection) {
        server = connection.server
        token = connection.token
    }

    init(server: String, token: String?) {
        self.server = server
        self.token = token
    }

    /// Sends a request; throws unless the server answers 2xx.
    func send(_ method: String, _ path: String, body: (any Encodable & Sendable)? = nil,
              authenticated: Bool = true) async throws -> APIResponse {
        guard let url = URL(string: server + path) else {
            throw CLIError.usage("'\(server + path)' is not a valid URL")
        }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.setValue("wharf-cli/\(WharfCLIVersion.current)", forHTTPHeaderField: "User-Agent")
        if authenticated {
            guard let token else {
                throw CLIError(code: "not_logged_in",
                               message: "no API token for \(server): run `wharf login --server \(server) --token-file FILE`, or set WHARF_TOKEN")
            }
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            request.httpBody = try encoder.encode(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError(code: "unreachable", message: "could not reach the Wharf server at \(url.absoluteString): \(Self.reason(error))")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            throw Self.failure(status: status, data: data, method: method, url: url)
        }
        return APIResponse(status: status, data: data)
    }

    /// Sends a request and decodes the answer.
    func call<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, body: (any Encodable & Sendable)? = nil,
                            authenticated: Bool = true) async throws -> (T, Data) {
        let response = try await send(method, path, body: body, authenticated: authenticated)
        return (try decode(type, from: response.data, path: path), response.data)
    }

    func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw CLIError(code: "unexpected_response",
                           message: "the answer of \(server)\(path) is not what this wharf CLI (\(WharfCLIVersion.current)) understands; is the server a Wharf server of the same version?")
        }
    }

    /// The server's error, or a description of a non-Wharf answer.
    static func failure(status: Int, data: Data, method: String, url: URL) -> CLIError {
        struct Envelope: Decodable {
            struct Body: Decodable { var code: String; var message: String }
            var error: Body
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: data) {
            return CLIError(code: envelope.error.code, message: envelope.error.message)
        }
        // `GET /api/health` of a server that runs but cannot use its store.
        struct Degraded: Decodable { var status: String; var reason: String? }
        if status == 503, let health = try? JSONDecoder().decode(Degraded.self, from: data), health.status == "degraded" {
            return CLIError(code: "degraded", message: "the Wharf server at \(url.scheme ?? "http")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "") runs but is degraded: \(health.reason ?? "its store cannot be used")")
        }
        return CLIError(code: "http_\(status)", message: "\(method) \(url.absoluteString) answered HTTP \(status) without a Wharf error body")
    }

    /// A short reason for a transport failure.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? URLError else { return "\(error.localizedDescription)" }
        switch error.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "timed out"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .networkConnectionLost: return "connection lost"
        case .notConnectedToInternet: return "no network"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            return "TLS handshake failed"
        case .badServerResponse: return "the answer is not HTTP"
        default: return "URL error \(error.code.rawValue)"
        }
    }
}

/// What the CLI needs of a job's progress; the HTTP client is the real one, tests script a fake.
protocol JobFeed: Sendable {
    /// The job and its raw JSON.
    func job(id: String) async throws -> (JobInfo, Data)
    /// The job's log so far.
    func log(id: String) async throws -> String
}

extension APIClient: JobFeed {
    func job(id: String) async throws -> (JobInfo, Data) {
        let (body, data) = try await call(JobBody.self, "GET", "/api/jobs/\(Path.escape(id))")
        return (body.job, data)
    }

    func log(id: String) async throws -> String {
        String(decoding: try await send("GET", "/api/jobs/\(Path.escape(id))/log").data, as: UTF8.self)
    }
}

/// Escapes ids and names for URL paths and queries.
enum Path {
    static func escape(_ component: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return component.addingPercentEncoding(withAllowedCharacters: allowed) ?? component
    }
}
