/// What a job does to its stack.
public enum JobKind: String, Codable, Sendable, Equatable {
    case deploy
    case remove
}

/// Credentials for one registry, sent with a job and never written to the agent's disk beyond the job.
public struct RegistryAuth: Codable, Sendable, Equatable {
    /// `host[:port]` as images name it.
    public var registry: String
    public var username: String
    public var password: String

    /// Makes credentials for `registry`.
    public init(registry: String, username: String, password: String) {
        self.registry = registry
        self.username = username
        self.password = password
    }
}

extension RegistryAuth: CustomStringConvertible, CustomDebugStringConvertible {
    /// `username@registry`: the password never reaches a log line.
    public var description: String { "\(username)@\(registry)" }
    /// Same as ``description``.
    public var debugDescription: String { description }
}

/// Everything an agent needs to run one job; sent by the server, kept by the agent until it ends.
public struct JobSpec: Codable, Sendable, Equatable {
    public var id: String
    public var kind: JobKind
    public var stackId: String
    /// The compose project name.
    public var stackName: String
    /// The compose file as the user wrote it.
    public var compose: String
    /// The stack's environment, including what the trigger set.
    public var env: [String: String]
    /// Service name → image reference to run: the job's plan, which wins over the compose file.
    public var images: [String: String]
    /// Whether to pull before `up`.
    public var pull: Bool
    /// Credentials for the registries the images come from.
    public var credentials: [RegistryAuth]
    /// How long to wait for the services to run and be healthy.
    public var healthTimeoutSeconds: Int

    /// Makes a job.
    public init(
        id: String, kind: JobKind, stackId: String, stackName: String, compose: String,
        env: [String: String], images: [String: String], pull: Bool,
        credentials: [RegistryAuth] = [], healthTimeoutSeconds: Int = 60
    ) {
        self.id = id
        self.kind = kind
        self.stackId = stackId
        self.stackName = stackName
        self.compose = compose
        self.env = env
        self.images = images
        self.pull = pull
        self.credentials = credentials
        self.healthTimeoutSeconds = healthTimeoutSeconds
    }
}

/// How a job ended.
public enum FinalJobState: String, Codable, Sendable, Equatable {
    case succeeded
    case failed
    case rolledBack = "rolled_back"
}

/// Why a job did not succeed.
public struct JobError: Codable, Sendable, Equatable {
    /// A stable snake_case code such as `pull_failed`.
    public var code: String
    /// A human sentence.
    public var message: String

    /// Makes an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// One service as a finished job left it.
public struct ServiceResult: Codable, Sendable, Equatable {
    public var name: String
    public var image: String
    public var imageId: String
    public var containers: Int

    /// Makes a service result.
    public init(name: String, image: String, imageId: String, containers: Int) {
        self.name = name
        self.image = image
        self.imageId = imageId
        self.containers = containers
    }
}

/// The outcome of a job, as the agent reports it (and re-reports until the server acknowledges it).
public struct JobResult: Codable, Sendable, Equatable {
    public var jobId: String
    public var state: FinalJobState
    public var error: JobError?
    public var services: [ServiceResult]

    /// Makes a result.
    public init(jobId: String, state: FinalJobState, error: JobError? = nil, services: [ServiceResult] = []) {
        self.jobId = jobId
        self.state = state
        self.error = error
        self.services = services
    }
}
