import ArgumentParser
import Foundation

/// `wharf`: the command-line client of the Wharf HTTP API.
///
/// Failures print one line, `error: <message> (<code>)`, on stderr and exit non-zero; they never
/// print a stack trace.
public struct WharfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wharf",
        abstract: "Command-line client of the Wharf HTTP API.",
        discussion: """
            Connect once with `wharf login --server URL --token-file FILE`; WHARF_SERVER and WHARF_TOKEN \
            (or --server and --token) override what it saved, and the saved token is sent only to the \
            saved server. Every command takes --json to print the \
            server's JSON instead of text meant for people.
            """,
        version: WharfCLIVersion.current,
        subcommands: [LoginCommand.self, EnvCommand.self, StackCommand.self, WebhookCommand.self, JobsCommand.self]
    )

    public init() {}

    /// Runs the process's command line and exits with its status. (Not `main()`: that name belongs
    /// to ArgumentParser, whose error output is not the CLI's one-line format.)
    public static func runCommandLine() async -> Never {
        let status = await run(Array(CommandLine.arguments.dropFirst()))
        Foundation.exit(status)
    }

    /// Parses and runs `arguments`, printing errors; returns the exit status.
    public static func run(_ arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as CLIError {
            Console.err(error.description)
            return error.exitCode
        } catch {
            // Help, --version and usage errors, as ArgumentParser words them.
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                if code == .success { Console.out(message) } else { Console.err(message) }
            }
            return code.rawValue
        }
    }
}
