import Dispatch
import Foundation
import Logging
import WharfAgent

#if canImport(Glibc)
import Glibc
#endif

/// Runs the agent until SIGTERM or SIGINT, then stops it; unfinished jobs stay in the journal.
func runUntilSignalled(_ runtime: AgentRuntime, logger: Logger) async throws {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let task = Task { try await runtime.run() }
    let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            logger.info("stopping", metadata: ["signal": "\(number)"])
            task.cancel()
        }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        try await task.value
    } catch is CancellationError {
    }
}
