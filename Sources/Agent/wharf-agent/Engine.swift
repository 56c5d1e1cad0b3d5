import Foundation
import Logging
import WharfAgent

/// Builds the real engine: compose (the plugin, else docker-compose, unless told) on the given Docker host.
func makeComposeEngine(dataDirectory: URL, dockerHost: String, composeCommand: String?, logger: Logger) throws -> any ContainerEngine {
    ComposeCLIEngine(stacksDirectory: dataDirectory.appendingPathComponent("stacks"), dockerHost: dockerHost,
                     composeCommand: composeCommand.map(ComposeCLIEngine.composeCommandWords),
                     scratchDirectory: dataDirectory.appendingPathComponent("tmp"), logger: logger)
}
