import Foundation
import WharfProtocol

/// Whether an environment's agent keeps a connection open (`agent`) or only checks in (`edge`).
public enum EnvironmentType: String, Codable, Sendable, CaseIterable {
    case agent
    case edge
}

/// An environment's link state as the API shows it.
public enum EnvironmentStatus: String, Codable, Sendable {
    case pending
    case connected
    case disconnected
}

/// What an agent said about itself in its last hello.
public struct AgentInfo: Codable, Sendable, Equatable {
    public var hostname: String
    public var version: String
    public var dockerVersion: String
    public var composeVersion: String
}

/// A Docker node (or edge device) that stacks are deployed to.
public struct Environment: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var type: EnvironmentType
    public var status: EnvironmentStatus
    public var lastSeenAt: Date?
    public var agent: AgentInfo?
    public var createdAt: Date
}

/// A stack's lifecycle state.
public enum StackStatus: String, Codable, Sendable {
    case deploying
    case running
    case failed
    case removing
}

/// The webhook of a stack, as the API shows it (never the raw token on its own).
public struct StackWebhook: Codable, Sendable, Equatable {
    public var url: String
    public var createdAt: Date
}

/// One service of a deployed stack.
public struct StackService: Codable, Sendable, Equatable {
    public var name: String
    public var image: String
    public var imageId: String?
    public var containers: Int
}

/// A compose stack on one environment.
public struct Stack: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var environmentId: String
    public var compose: String
    public var env: [String: String]
    /// How long, in seconds, a deploy waits for every container to run and be healthy before it
    /// rolls back (`JobSpec.healthTimeoutSeconds`). Each job keeps the value its stack had when the
    /// job was queued, as it keeps its compose file and env.
    public var healthTimeout: Int = Stack.defaultHealthTimeout
    public var status: StackStatus
    public var webhook: StackWebhook?
    public var lastJobId: String?
    public var services: [StackService]
    public var createdAt: Date
    public var updatedAt: Date
}

extension Stack {
    /// The health timeout of a stack that was not given one (and of every stack of a server before
    /// the setting): the contract's 60 s, `JobSpec`'s default.
    public static let defaultHealthTimeout = 60
    /// The health timeouts a stack may have, in seconds: at least a second (0 would fail every
    /// deploy before its containers start), at most an hour, which no sane healthcheck needs and
    /// which bounds how long a broken deploy holds its stack's later jobs.
    public static let healthTimeoutRange = 1...3600
}

/// A job's place in its lifecycle.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued
    case dispatched
    case running
    case succeeded
    case failed
    case rolledBack = "rolled_back"

    /// Whether the job has ended.
    public var isFinal: Bool { self == .succeeded || self == .failed || self == .rolledBack }

    init(_ final: FinalJobState) {
        switch final {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .rolledBack: self = .rolledBack
        }
    }
}

/// Who or what asked for a job.
public struct JobTrigger: Codable, Sendable, Equatable {
    /// `api`, `webhook`, `registry` or `dockerhub`.
    public var source: String
    public var remoteAddr: String?
    public var userAgent: String?
    public var params: [String: String]

    /// `params["image"]` of a job that a call with `new` joined: the images a push or a Docker Hub
    /// call named (`repo:tag`, comma-separated), each repository once with the tag the job deploys
    /// (the newest), in the order they first came.
    static func mergedImages(_ old: String, _ new: String) -> String {
        func list(_ text: String) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        func repository(_ image: String) -> String {
            guard let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") else { return image }
            return String(image[..<colon])
        }
        var images = list(old)
        // An image the list names already stays where it is; a new tag of a listed repository
        // replaces the old one, at the end.
        for image in list(new) where !images.contains(image) {
            images.removeAll { repository($0) == repository(image) }
            images.append(image)
        }
        return images.joined(separator: ", ")
    }

    /// Makes a trigger record.
    public init(source: String, remoteAddr: String? = nil, userAgent: String? = nil, params: [String: String] = [:]) {
        self.source = source
        self.remoteAddr = remoteAddr
        self.userAgent = userAgent
        self.params = params
    }
}

/// A service and the image a job will run for it.
public struct PlannedService: Codable, Sendable, Equatable {
    public var name: String
    public var image: String

    /// Makes a planned service.
    public init(name: String, image: String) {
        self.name = name
        self.image = image
    }
}

/// What a job will deploy, fixed when it is queued or joined.
public struct JobPlan: Codable, Sendable, Equatable {
    public var services: [PlannedService]
}

/// What a finished job left running.
public struct JobOutcome: Codable, Sendable, Equatable {
    public var services: [ServiceResult]
}

/// A unit of work for one stack, as the API shows it.
public struct Job: Codable, Sendable, Equatable {
    public var id: String
    public var stackId: String
    public var environmentId: String
    public var kind: JobKind
    public var state: JobState
    public var trigger: JobTrigger
    public var coalesced: Int
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var plan: JobPlan
    public var error: JobError?
    public var result: JobOutcome?
}

/// A job with what the agent needs but the API does not show.
public struct JobRecord: Sendable, Equatable {
    public var job: Job
    /// The stack's compose file this job deploys.
    public var compose: String
    /// The full environment this job deploys with: the stack's env merged with the trigger's variables.
    public var env: [String: String]
    public var pull: Bool
    /// The stack's name (the compose project name).
    public var stackName: String
}

/// Credentials for a registry; the password never leaves the server except inside a job.
public struct Registry: Codable, Sendable, Equatable {
    public var id: String
    public var url: String
    public var username: String
    public var createdAt: Date
}

/// Makes opaque ids such as `job_3f9a…`.
enum Identifier {
    /// `prefix`, an underscore and 80 random bits in hex. Two draws from the system's generator (each
    /// a `getrandom` call), not one per byte as `UInt8.random(in:using:)` would make it.
    static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var text = Array(prefix.utf8)
        text.reserveCapacity(text.count + 21)
        text.append(UInt8(ascii: "_"))
        let high = generator.next(), low = generator.next()
        for index in 0..<10 {
            let byte = UInt8(truncatingIfNeeded: index < 8 ? high >> (index * 8) : low >> ((index - 8) * 8))
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

// The contract shows absent values as `null` ("agent": {...}|null); synthesized Codable would leave
// them out, so these types encode every key.
extension Environment {
    private enum CodingKeys: String, CodingKey { case id, name, type, status, lastSeenAt, agent, createdAt }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(type, forKey: .type)
        try container.encode(status, forKey: .status)
        try container.encode(lastSeenAt, forKey: .lastSeenAt)
        try container.encode(agent, forKey: .agent)
        try container.encode(createdAt, forKey: .createdAt)
    }
}

extension Stack {
    private enum CodingKeys: String, CodingKey {
        case id, name, environmentId, compose, env, healthTimeout, status, webhook, lastJobId, services, createdAt, updatedAt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(environmentId, forKey: .environmentId)
        try container.encode(compose, forKey: .compose)
        try container.encode(env, forKey: .env)
        try container.encode(healthTimeout, forKey: .healthTimeout)
        try container.encode(status, forKey: .status)
        try container.encode(webhook, forKey: .webhook)
        try container.encode(lastJobId, forKey: .lastJobId)
        try container.encode(services, forKey: .services)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

extension Job {
    private enum CodingKeys: String, CodingKey {
        case id, stackId, environmentId, kind, state, trigger, coalesced, createdAt, startedAt, finishedAt, plan, error, result
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(stackId, forKey: .stackId)
        try container.encode(environmentId, forKey: .environmentId)
        try container.encode(kind, forKey: .kind)
        try container.encode(state, forKey: .state)
        try container.encode(trigger, forKey: .trigger)
        try container.encode(coalesced, forKey: .coalesced)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(finishedAt, forKey: .finishedAt)
        try container.encode(plan, forKey: .plan)
        try container.encode(error, forKey: .error)
        try container.encode(result, forKey: .result)
    }
}
