import Subprocess

extension AgentHTTPClient {
    /// One request through the `curl` executable. Everything it is told — URL, header fields with
    /// any bearer token, the body with any join token — goes in a config on its standard input
    /// (`--config -`), so no secret appears in the process list; `-q` keeps a `~/.curlrc` out.
    func sendWithCurl(_ request: AgentHTTPRequest) async throws -> AgentHTTPResponse {
        let seconds = max(1, Int((Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18).rounded(.up)))
        var config = [
            "silent", "show-error",
            "url = \(Self.quoted(request.url))",
            "request = \(Self.quoted(request.method))",
            "proto = \"=http,https\"",
            "max-time = \(seconds)",
            "max-filesize = \(responseLimit)",
            "user-agent = \(Self.quoted("wharf-agent/\(WharfAgentVersion.current)"))",
            // The status code on a line of its own after the body.
            "write-out = \(Self.quoted("\n%{http_code}"))",
        ]
        for field in request.headers {
            config.append("header = \(Self.quoted("\(field.name): \(field.value)"))")
        }
        if let body = request.body {
            config.append("data-raw = \(Self.quoted(String(decoding: body, as: UTF8.self)))")
        }
        let input = config.joined(separator: "\n") + "\n"
        let result: ExecutionResult<Void, StringOutput<Unicode.UTF8>, StringOutput<Unicode.UTF8>>
        do {
            result = try await Subprocess.run(
                executable(), arguments: ["-q", "--config", "-"],
                input: .string(input), output: .string(limit: responseLimit + 64), error: .string(limit: 16 << 10))
        } catch let error as SubprocessError where error.code == .outputLimitExceeded {
            throw AgentHTTPError(.badResponse, "the answer from \(request.url) is over \(responseLimit) bytes")
        } catch let error as SubprocessError where error.code == .executableNotFound {
            throw AgentHTTPError(.curlMissing, "https:// URLs need the curl program, which is not on PATH (\(curl)): install curl")
        } catch {
            throw AgentHTTPError(.unreachable, "could not run \(curl): \(error)")
        }
        let output = result.standardOutput
        guard result.terminationStatus.isSuccess else {
            let reason = result.standardError.split(separator: "\n").last.map(String.init) ?? "\(result.terminationStatus)"
            if case .exited(28) = result.terminationStatus {
                throw AgentHTTPError(.timedOut, "\(request.url) did not answer within \(timeout): \(reason)")
            }
            throw AgentHTTPError(.unreachable, reason)
        }
        guard let newline = output.lastIndex(of: "\n"), let status = Int(output[output.index(after: newline)...]), status >= 100 else {
            throw AgentHTTPError(.badResponse, "curl gave no HTTP status for \(request.url)")
        }
        return AgentHTTPResponse(status: status, body: Array(output[..<newline].utf8))
    }

    private func executable() -> Executable {
        curl.contains("/") ? .path(.init(curl)) : .name(curl)
    }

    /// A double-quoted curl config value: backslash, quote and control characters escaped.
    static func quoted(_ value: String) -> String {
        var text = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": text += "\\\\"
            case "\"": text += "\\\""
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }
}
