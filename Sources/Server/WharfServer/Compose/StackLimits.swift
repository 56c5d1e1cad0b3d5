import WharfProtocol

/// How big a stack's env may grow, so that every job of the stack fits in one link frame.
///
/// A job goes to its agent as one frame of at most `WireCodec.maxFrameBytes` (4 MiB): its compose
/// file (under 1 MiB, the request body limit, so at most 2 MiB as JSON), its env, its images and
/// the registries' credentials. A larger frame could never be delivered. The env is the part that
/// grows without a request growing: webhook calls that join a queued deploy merge their variables
/// into it. The dispatcher fails a job that is still too large (`job_too_large`) as a backstop.
public enum StackLimits {
    /// The most variables in a stack's env or a job's.
    public static let maxVariables = 1_000
    /// The most bytes an env takes on the link, names and values as JSON strings.
    public static let maxEnvBytes = 1 << 20

    /// Throws `stack_too_large` if `env` is over either limit.
    public static func check(env: [String: String]) throws(ComposeError) {
        guard env.count <= maxVariables else {
            throw ComposeError(code: .stackTooLarge, message:
                "The stack's env would have \(env.count) variables; at most \(maxVariables) are allowed, so that its jobs fit in one link frame.")
        }
        var bytes = 0
        for (name, value) in env {
            bytes += WireCodec.encodedLength(of: name) + WireCodec.encodedLength(of: value) + 2
        }
        guard bytes <= maxEnvBytes else {
            throw ComposeError(code: .stackTooLarge, message:
                "The stack's env would take \(bytes) bytes; at most \(maxEnvBytes) (1 MiB, as JSON) are allowed, so that its jobs fit in one link frame.")
        }
    }
}
