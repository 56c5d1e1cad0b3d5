extension APIError {
    /// 400 `invalid_tag`: `tag` is not a Docker tag, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    public static func invalidTag(_ tag: String) -> APIError {
        .badRequest(
            code: "invalid_tag",
            message: "'\(Self.quote(tag))' is not a valid Docker image tag: it must be 1 to 128 letters, digits, "
                + "'_', '.' or '-', and must not start with '.' or '-'."
        )
    }

    /// 400 `invalid_pullimage`: `pullimage` is not `true`, `false`, `1` or `0`.
    public static func invalidPullImage(_ value: String) -> APIError {
        .badRequest(
            code: "invalid_pullimage",
            message: "pullimage must be true or false (or 1 or 0), not '\(Self.quote(value))'."
        )
    }

    /// 400 `invalid_wait`: `wait` is not a whole number of seconds from 0 to 300.
    public static func invalidWait(_ value: String) -> APIError {
        .badRequest(
            code: "invalid_wait",
            message: "wait must be a whole number of seconds from 0 to \(WebhookTrigger.maxWait), not '\(Self.quote(value))'."
        )
    }

    /// 400 `invalid_variable`: a variable name is not `[A-Za-z_][A-Za-z0-9_]*`, or its value holds a NUL byte.
    public static func invalidVariable(name: String, reason: String? = nil) -> APIError {
        .badRequest(
            code: "invalid_variable",
            message: reason
                ?? "'\(Self.quote(name))' is not a valid variable name: use letters, digits and '_', not starting with a digit."
        )
    }

    /// 400 `invalid_query`: the query string is not well-formed URL encoding.
    public static func invalidQuery(_ message: String) -> APIError {
        .badRequest(code: "invalid_query", message: message)
    }

    /// 400 `invalid_payload`: the request body is malformed or of a kind webhooks do not take.
    public static func invalidPayload(_ message: String) -> APIError {
        .badRequest(code: "invalid_payload", message: message)
    }

    /// A caller's value for a message: at most 64 characters, control characters shown as `?`.
    static func quote(_ value: String) -> String {
        let shown = value.unicodeScalars.prefix(64).map { $0.properties.generalCategory == .control ? "?" : Character($0) }
        return String(shown) + (value.unicodeScalars.count > 64 ? "…" : "")
    }
}
