/// Names a stack variable cannot have.
///
/// The agent runs compose with the stack's variables as its process environment (compose's
/// interpolation reads them there), so a variable named like one of compose's, Docker's, the
/// dynamic loader's or Python's own settings would change how compose runs — which engine it
/// drives, which files and profiles it reads, which code it loads — rather than the stack. The
/// server refuses such names from the API and from webhooks (`invalid_variable`), and the agent
/// leaves them out of compose's environment whatever a job says.
public enum StackVariables {
    /// Exact names: the agent's own (`PATH`, `DOCKER_HOST`, the job's `DOCKER_CONFIG`) and the
    /// Docker CLI's settings.
    static let reservedNames: Set<String> = [
        "PATH", "GCONV_PATH", "GLIBC_TUNABLES",
        "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION", "DOCKER_CONTENT_TRUST", "DOCKER_CONTENT_TRUST_SERVER", "DOCKER_DEFAULT_PLATFORM",
        "DOCKER_BUILDKIT", "DOCKER_CLI_EXPERIMENTAL", "DOCKER_CLI_HINTS",
    ]
    /// Prefixes: compose's settings (`COMPOSE_FILE`, `COMPOSE_PROFILES`, …), the dynamic loader's
    /// (`LD_PRELOAD`, …), Python's (docker-compose v1 is a Python program) and BuildKit's.
    static let reservedPrefixes = ["COMPOSE_", "LD_", "DYLD_", "PYTHON", "BUILDKIT_"]

    /// Whether `name` is reserved (compared as written: environment names are case-sensitive).
    public static func isReserved(_ name: some StringProtocol) -> Bool {
        reservedNames.contains(String(name)) || reservedPrefixes.contains { name.hasPrefix($0) }
    }

    /// The message of the `invalid_variable` error for a reserved name.
    public static func reservedMessage(_ name: some StringProtocol) -> String {
        "'\(name.prefix(64))' is reserved: compose runs with the stack's variables as its environment, and this one would change how compose runs, not the stack."
    }
}
