import Dispatch
import Foundation
import Logging
import WharfAgent

#if canImport(Glibc)
import Glibc
#endif

/// Runs the agent until SIGTERM or SIGINT, then stops it; unfinished jobs stay in the journal.
func runUntilSignalled(_ runtime: AgentRuntime, logger: Logger) async throws {
    try await runUntilSignalled(logger: logger) { try await runtime.run() }
}

/// Runs `body` until SIGTERM or SIGINT cancels it; cancellation is a clean stop, not an error.
func runUntilSignalled(logger: Logger, _ body: @escaping @Sendable () async throws -> Void) async throws {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let task = Task { try await body() }
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
