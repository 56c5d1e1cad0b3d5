import ArgumentParser

/// `wharf`: the command-line client of the Wharf HTTP API.
public struct WharfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wharf",
        abstract: "Command-line client of the Wharf HTTP API."
    )

    public init() {}
}
