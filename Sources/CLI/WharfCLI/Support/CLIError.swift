import Foundation

/// A failure the CLI reports as one line, `error: <message> (<code>)`, with a non-zero exit status.
///
/// Server errors keep the server's `code` and `message`; failures found by the CLI itself use codes
/// in the same snake_case style (`unreachable`, `not_logged_in`, `ambiguous`, …).
public struct CLIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable snake_case code.
    public var code: String
    /// A human sentence.
    public var message: String
    /// The process exit status to end with.
    public var exitCode: Int32

    /// Makes an error.
    public init(code: String, message: String, exitCode: Int32 = 1) {
        self.code = code
        self.message = message
        self.exitCode = exitCode
    }

    /// The line printed on stderr.
    public var description: String { "error: \(message) (\(code))" }

    static func usage(_ message: String) -> CLIError {
        CLIError(code: "invalid_argument", message: message, exitCode: 64)
    }
}
