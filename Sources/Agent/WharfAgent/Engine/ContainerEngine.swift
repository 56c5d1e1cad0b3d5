/// Which compose CLI runs stacks.
public enum ComposeFlavour: String, Sendable, Codable { case plugin /* docker compose */, standalone /* docker-compose */ }
public struct EngineInfo: Sendable, Equatable, Codable { public var dockerVersion: String; public var composeFlavour: ComposeFlavour; public var composeVersion: String
    public init(dockerVersion: String, composeFlavour: ComposeFlavour, composeVersion: String) { self.dockerVersion = dockerVersion; self.composeFlavour = composeFlavour; self.composeVersion = composeVersion } }
public struct RegistryCredential: Sendable, Codable, Equatable { public var registry: String /* host[:port] */; public var username: String; public var password: String }
public struct StackDeployment: Sendable {
  public var stackId: String        // directory name under the stacks dir
  public var projectName: String    // compose project name = stack name
  public var compose: String        // the compose YAML as the user wrote it
  public var environment: [String: String]  // the stack's env
  public var images: [String: String]       // service name -> image reference to run (the plan; authoritative)
  public var pull: Bool
  public var credentials: [RegistryCredential]
  public var healthTimeout: Duration // default 60 s
}
public struct ServiceOutcome: Sendable, Codable, Equatable { public var name: String; public var image: String; public var imageId: String; public var containers: Int }
public enum JobFailureCode: String, Sendable, Codable { case pullFailed = "pull_failed", composeFailed = "compose_failed", unhealthy, timeout, engineUnreachable = "engine_unreachable", invalidStack = "invalid_stack" }
public struct DeployOutcome: Sendable, Codable, Equatable {
  public enum State: String, Sendable, Codable { case succeeded, failed, rolledBack = "rolled_back" }
  public var state: State; public var errorCode: JobFailureCode?; public var errorMessage: String?; public var services: [ServiceOutcome]
  public init(state: State, errorCode: JobFailureCode? = nil, errorMessage: String? = nil, services: [ServiceOutcome] = []) { self.state = state; self.errorCode = errorCode; self.errorMessage = errorMessage; self.services = services }
}
/// Runs stack jobs on a container engine.
public protocol ContainerEngine: Sendable {
  func info() async throws -> EngineInfo
  func deploy(_ deployment: StackDeployment, log: @escaping @Sendable (String) -> Void) async -> DeployOutcome
  func remove(stackId: String, projectName: String, compose: String, environment: [String: String], log: @escaping @Sendable (String) -> Void) async -> DeployOutcome
}
