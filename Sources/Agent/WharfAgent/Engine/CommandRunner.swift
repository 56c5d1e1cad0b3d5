import Subprocess
import Synchronization

/// How one child process ended, with what it printed.
struct CommandResult: Sendable {
    /// The exit status; meaningless when ``timedOut`` is set.
    var status: TerminationStatus
    /// Whether the process was torn down because it outran its time limit.
    var timedOut: Bool
    /// Standard output, as far as the capture limit allowed.
    var standardOutput: String
    /// Whether standard output was longer than the capture limit.
    var standardOutputTruncated: Bool
    /// The last lines of standard output and standard error, interleaved as they arrived.
    var tail: [String]

    /// Whether the process ran to completion with exit code 0.
    var succeeded: Bool { !timedOut && status.isSuccess }

    /// The end of the output as one message, for error reports.
    var tailText: String { tail.joined(separator: "\n") }

    /// The last `count` output lines, trimmed, as one message.
    func lastLines(_ count: Int) -> String {
        tail.suffix(count).map { $0.trimmingWhitespace() }.joined(separator: "\n")
    }

    /// "exit code N", "signal N" or "timed out", for error reports.
    var endDescription: String {
        if timedOut { return "timed out" }
        switch status {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }
}

/// Runs one executable with an argument array and an explicit environment — never a shell —
/// with a time limit, bounded output, and line streaming.
struct CommandRunner: Sendable {
    /// The complete environment of every child; nothing is inherited from the agent.
    var environment: [String: String]
    /// The directory children run in, if not the agent's.
    var workingDirectory: String?
    /// How many trailing output lines a result keeps for error messages.
    var tailLines = 20
    /// How long to wait after SIGTERM before SIGKILL when a child is torn down.
    var gracePeriod: Duration = .seconds(5)

    /// Runs `executable` with `arguments`, streaming each output line to `lines` if given.
    ///
    /// Throws ``ContainerEngineError`` only when the process cannot be started; a non-zero exit
    /// or a timeout is reported in the result. When the time limit passes, the child's whole
    /// process group gets SIGTERM, then SIGKILL after the grace period.
    func run(
        _ executable: String,
        _ arguments: [String],
        timeout: Duration,
        captureLimit: Int = 0,
        lines: (@Sendable (String) -> Void)? = nil
    ) async throws -> CommandResult {
        var options = PlatformOptions()
        // A session of its own, so a teardown reaches everything compose started.
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod)]

        var env: [Environment.Key: String] = [:]
        for (key, value) in environment {
            guard let key = Environment.Key(rawValue: key) else { continue }
            env[key] = value
        }

        let tail = TailBuffer(capacity: tailLines)
        let grace = gracePeriod
        let execution: ExecutionResult<StreamsResult, SequenceOutput, SequenceOutput>
        do {
            execution = try await Subprocess.run(
                .path(.init(executable)),
                arguments: Arguments(arguments),
                environment: .custom(env),
                workingDirectory: workingDirectory.map { .init($0) },
                platformOptions: options,
                input: .none,
                output: .sequence,
                error: .sequence
            ) { execution in
                await withTaskGroup(of: StreamEvent.self) { group in
                    group.addTask {
                        await Self.drain(execution.standardOutput, captureLimit: captureLimit, tail: tail, lines: lines)
                    }
                    group.addTask {
                        await Self.drain(execution.standardError, captureLimit: 0, tail: tail, lines: lines)
                    }
                    group.addTask {
                        do {
                            try await Task.sleep(for: timeout)
                        } catch {
                            return .timerCancelled
                        }
                        await execution.teardown(using: [
                            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: grace)
                        ])
                        return .timedOut
                    }
                    var result = StreamsResult()
                    var openStreams = 2
                    while let event = await group.next() {
                        switch event {
                        case .drained(let captured, let truncated):
                            openStreams -= 1
                            if let captured {
                                result.captured = captured
                                result.truncated = truncated
                            }
                            if openStreams == 0 { group.cancelAll() }
                        case .timedOut:
                            result.timedOut = true
                        case .timerCancelled:
                            break
                        }
                    }
                    return result
                }
            }
        } catch let error as SubprocessError {
            throw ContainerEngineError(.composeFailed, "could not run \(executable): \(error)")
        }
        let streams = execution.closureResult
        return CommandResult(
            status: execution.terminationStatus,
            timedOut: streams.timedOut,
            standardOutput: String(decoding: streams.captured, as: UTF8.self),
            standardOutputTruncated: streams.truncated,
            tail: tail.lines
        )
    }

    private struct StreamsResult: Sendable {
        var captured: [UInt8] = []
        var truncated = false
        var timedOut = false
    }

    private enum StreamEvent: Sendable {
        /// A stream ended; `captured` is set for the captured stream (standard output).
        case drained(captured: [UInt8]?, truncated: Bool)
        case timedOut
        case timerCancelled
    }

    /// Reads a stream to its end: captures up to `captureLimit` bytes, splits lines for the
    /// tail and the line sink.
    private static func drain(
        _ stream: SubprocessOutputSequence,
        captureLimit: Int,
        tail: TailBuffer,
        lines: (@Sendable (String) -> Void)?
    ) async -> StreamEvent {
        var captured: [UInt8] = []
        var truncated = false
        var splitter = LineSplitter()
        let emit: (String) -> Void = { line in
            guard !line.isEmpty else { return }
            tail.append(line)
            lines?(line)
        }
        do {
            for try await buffer in stream {
                buffer.withUnsafeBytes { bytes in
                    if captureLimit > 0 {
                        let room = captureLimit - captured.count
                        if bytes.count > room { truncated = true }
                        captured.append(contentsOf: bytes.prefix(max(room, 0)))
                    }
                    splitter.feed(bytes, emit: emit)
                }
            }
        } catch {
            // A read error ends the stream; the exit status still tells how the child did.
        }
        splitter.finish(emit: emit)
        return .drained(captured: captureLimit > 0 ? captured : nil, truncated: truncated)
    }
}

/// The last lines of a child's output; both output streams append to it.
final class TailBuffer: Sendable {
    private let capacity: Int
    private let storage = Mutex<[String]>([])

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The lines kept, oldest first.
    var lines: [String] { storage.withLock { $0 } }

    func append(_ line: String) {
        storage.withLock { lines in
            lines.append(line)
            if lines.count > capacity { lines.removeFirst(lines.count - capacity) }
        }
    }
}
