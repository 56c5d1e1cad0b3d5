import Foundation
import Logging
import WharfAgent

/// Builds the real engine: compose (plugin or standalone) on the given Docker host.
func makeComposeEngine(dataDirectory: URL, dockerHost: String, composeCommand: String?, logger: Logger) throws -> any ContainerEngine {
    throw AgentSetupError(message: "the compose engine is not built into this agent yet; use --simulate")
}
