import WharfProtocol

/// Which compose CLI runs stacks.
public enum ComposeFlavour: String, Sendable, Codable, CaseIterable {
    /// The Docker CLI plugin, run as `docker compose` (Compose v2).
    case plugin
    /// The standalone binary, run as `docker-compose` (Compose v1, or a v2 binary installed standalone).
    case standalone
}

/// What an agent reports about its node's engine.
public struct EngineInfo: Sendable, Equatable, Codable {
    /// The engine's server version, as `docker version --format '{{.Server.Version}}'` prints it.
    public var dockerVersion: String
    /// The compose CLI that runs stacks on this node.
    public var composeFlavour: ComposeFlavour
    /// The compose version, as `compose version --short` prints it.
    public var composeVersion: String

    /// Creates engine information.
    public init(dockerVersion: String, composeFlavour: ComposeFlavour, composeVersion: String) {
        self.dockerVersion = dockerVersion
        self.composeFlavour = composeFlavour
        self.composeVersion = composeVersion
    }
}

/// Credentials for one registry, used for the duration of one job only (the wire's type).
public typealias RegistryCredential = RegistryAuth

/// One deploy job: a stack's compose file, its environment and the images the job's plan runs.
public struct StackDeployment: Sendable {
    /// The directory name under the stacks directory.
    public var stackId: String
    /// The compose project name (the stack's name).
    public var projectName: String
    /// The compose YAML as the user wrote it.
    public var compose: String
    /// The stack's environment, used for interpolation and nothing else of the agent's.
    public var environment: [String: String]
    /// Service name to the image reference to run; the plan is authoritative over the compose file.
    public var images: [String: String]
    /// Whether to pull images before starting services.
    public var pull: Bool
    /// Registry credentials for this job; they live in a job-scoped directory deleted at the end.
    public var credentials: [RegistryCredential]
    /// How long services may take to be running and healthy.
    public var healthTimeout: Duration
    /// The job's ID. A run of a job that finds the stack's record of an unfinished run of the same
    /// job (cut short by a stop or a crash) returns on failure to what ran before that first run
    /// (``StackFiles/InFlight``); nil for a deploy that is not a job of the server's.
    public var jobId: String?

    /// Creates a deploy job; `healthTimeout` defaults to the contract's 60 s.
    public init(
        jobId: String? = nil,
        stackId: String,
        projectName: String,
        compose: String,
        environment: [String: String] = [:],
        images: [String: String] = [:],
        pull: Bool = true,
        credentials: [RegistryCredential] = [],
        healthTimeout: Duration = .seconds(60)
    ) {
        self.stackId = stackId
        self.projectName = projectName
        self.compose = compose
        self.environment = environment
        self.images = images
        self.pull = pull
        self.credentials = credentials
        self.healthTimeout = healthTimeout
        self.jobId = jobId
    }
}

/// What runs for one service after a job (the wire's type).
public typealias ServiceOutcome = ServiceResult

/// Why a job failed; the raw values are the contract's `error.code` strings.
public enum JobFailureCode: String, Sendable, Codable {
    case pullFailed = "pull_failed"
    case composeFailed = "compose_failed"
    case unhealthy
    case timeout
    case engineUnreachable = "engine_unreachable"
    case invalidStack = "invalid_stack"
}

/// How a job ended on the engine.
public struct DeployOutcome: Sendable, Codable, Equatable {
    /// The job's final state, as the contract's job states spell it.
    public enum State: String, Sendable, Codable {
        case succeeded
        case failed
        case rolledBack = "rolled_back"
    }

    public var state: State
    public var errorCode: JobFailureCode?
    public var errorMessage: String?
    /// What runs per service after a successful job; empty otherwise.
    public var services: [ServiceOutcome]

    /// Creates an outcome.
    public init(
        state: State,
        errorCode: JobFailureCode? = nil,
        errorMessage: String? = nil,
        services: [ServiceOutcome] = []
    ) {
        self.state = state
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.services = services
    }

    /// A successful outcome with what runs now.
    public static func succeeded(_ services: [ServiceOutcome]) -> Self {
        .init(state: .succeeded, services: services)
    }

    /// A failed outcome; nothing was rolled back.
    public static func failed(_ code: JobFailureCode, _ message: String) -> Self {
        .init(state: .failed, errorCode: code, errorMessage: message)
    }

    /// The services were returned to their previous images after a failure.
    public static func rolledBack(_ code: JobFailureCode, _ message: String) -> Self {
        .init(state: .rolledBack, errorCode: code, errorMessage: message)
    }
}

/// Runs stack jobs on a container engine.
///
/// `deploy` and `remove` never throw: every failure becomes a ``DeployOutcome`` with a
/// ``JobFailureCode``, because the job must always end in a final state.
public protocol ContainerEngine: Sendable {
    /// The engine's and the compose CLI's versions; throws ``ContainerEngineError`` if the engine is unreachable.
    func info() async throws -> EngineInfo
    /// Pulls, starts and health-checks a stack, rolling back to the previous images on failure.
    func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome
    /// Stops and removes a stack's containers and networks (volumes are kept) and its directory.
    func remove(
        stackId: String,
        projectName: String,
        compose: String,
        environment: [String: String],
        log: @escaping @Sendable (String) -> Void
    ) async -> DeployOutcome
}

/// A failure of the container engine driver, with the contract code it maps to.
public struct ContainerEngineError: Error, Sendable, CustomStringConvertible {
    /// The stable code, as reported in a job's `error.code`.
    public var code: JobFailureCode
    /// A human sentence, safe to show to the stack's owner.
    public var message: String

    /// Creates an error with its contract code and a human message.
    public init(_ code: JobFailureCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
