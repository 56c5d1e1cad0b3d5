/// The API's JSON as the CLI reads it. Fields the CLI does not show are left out, and fields it
/// shows are optional where an older or newer server might omit them, so output never breaks on them.

struct AgentInfo: Decodable, Sendable {
    var hostname: String?
    var version: String?
    var dockerVersion: String?
    var composeVersion: String?
}

struct EnvironmentInfo: Decodable, Sendable {
    var id: String
    var name: String
    var type: String
    var status: String
    var lastSeenAt: String?
    var agent: AgentInfo?
}

struct EnvironmentList: Decodable, Sendable { var environments: [EnvironmentInfo] }
struct EnvironmentCreated: Decodable, Sendable { var environment: EnvironmentInfo; var joinToken: String }
struct JoinTokenCreated: Decodable, Sendable { var joinToken: String }

struct WebhookInfo: Decodable, Sendable {
    var url: String
    var createdAt: String?
}

struct StackServiceInfo: Decodable, Sendable {
    var name: String
    var image: String
    var imageId: String?
    var containers: Int?
}

struct StackInfo: Decodable, Sendable {
    var id: String
    var name: String
    var environmentId: String
    var compose: String?
    var env: [String: String]?
    /// Seconds; nil from a server before the setting.
    var healthTimeout: Int?
    var status: String
    var webhook: WebhookInfo?
    var lastJobId: String?
    var services: [StackServiceInfo]?
    var createdAt: String?
    var updatedAt: String?
}

struct StackList: Decodable, Sendable { var stacks: [StackInfo] }
struct StackBody: Decodable, Sendable { var stack: StackInfo }
struct StackAndJob: Decodable, Sendable { var stack: StackInfo; var job: JobInfo }

struct TriggerInfo: Decodable, Sendable {
    var source: String
    var remoteAddr: String?
    var params: [String: String]?
}

struct PlannedServiceInfo: Decodable, Sendable {
    var name: String
    var image: String
    var imageId: String?
}

struct JobServices: Decodable, Sendable { var services: [PlannedServiceInfo]? }

struct JobErrorInfo: Decodable, Sendable {
    var code: String
    var message: String
}

struct JobInfo: Decodable, Sendable {
    var id: String
    var stackId: String
    var environmentId: String?
    var kind: String
    var state: String
    var trigger: TriggerInfo?
    var coalesced: Int?
    var createdAt: String?
    var startedAt: String?
    var finishedAt: String?
    var plan: JobServices?
    var error: JobErrorInfo?
    var result: JobServices?

    /// Whether the job has ended (`succeeded`, `failed` or `rolled_back`).
    var isFinal: Bool { ["succeeded", "failed", "rolled_back"].contains(state) }
}

struct JobBody: Decodable, Sendable { var job: JobInfo }
struct ForgottenBody: Decodable, Sendable { var forgotten: String; var endedJobs: [String] }
struct JobList: Decodable, Sendable { var jobs: [JobInfo] }

struct ComposeConfig: Decodable, Sendable {
    var config: String
    var services: [PlannedServiceInfo]?
}

struct WebhookURLBody: Decodable, Sendable { var url: String }

struct Health: Decodable, Sendable {
    var status: String?
    var version: String?
    /// The URL the server publishes webhooks and `/install-agent.sh` under, which agents use.
    var publicUrl: String?
}

// Request bodies.

struct CreateEnvironmentRequest: Encodable, Sendable { var name: String; var type: String }
// A nil field is left out of the body: the server's default, or the stack's value on an update.
struct CreateStackRequest: Encodable, Sendable {
    var name: String; var environmentId: String; var compose: String; var env: [String: String]; var healthTimeout: Int?
}
struct UpdateStackRequest: Encodable, Sendable { var compose: String; var env: [String: String]?; var healthTimeout: Int? }
struct RedeployRequest: Encodable, Sendable { var pullImage: Bool }
