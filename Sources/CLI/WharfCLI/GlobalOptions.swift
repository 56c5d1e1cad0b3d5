import ArgumentParser
import Foundation

/// Options every command takes: where the server is, the token, and JSON output.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The server's URL; else WHARF_SERVER, else what `wharf login` saved.", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("The admin API token; else WHARF_TOKEN, else what `wharf login` saved (for its server only).", valueName: "token"))
    var token: String?

    @Flag(help: "Print the server's JSON instead of text meant for people.")
    var json = false

    /// The server and token to use.
    func connection() throws -> Connection {
        let environment = ProcessInfo.processInfo.environment
        let config = try CLIConfig.load(from: CLIConfig.fileURL(environment: environment))
        return try Connection.resolve(server: server, token: token, environment: environment, config: config)
    }

    /// A client of the chosen server.
    func client() throws -> APIClient {
        APIClient(try connection())
    }
}

/// Options of the commands that can wait for their job.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Wait until the job ends, showing its progress and log; fail if it fails or is rolled back.")
    var wait = false

    @Option(help: ArgumentHelp("With --wait, give up waiting after this long, such as 90s or 10m.", valueName: "duration"))
    var timeout: String = "10m"

    func validate() throws {
        guard DurationParser.parse(timeout) != nil else {
            throw ValidationError("--timeout must look like 90s, 500ms, 10m or 1h30m, and be under 1000000000 seconds")
        }
    }

    var timeoutDuration: Duration? { DurationParser.parse(timeout) }
}

/// Quotes words for a POSIX shell only where they need it, so printed commands paste as they are.
enum Shell {
    static func quote(_ word: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-")
        if !word.isEmpty, word.unicodeScalars.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func command(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}

/// Reads a file the user named, `-` meaning stdin, failing with a one-line error.
func readUserFile(_ path: String, what: String) throws -> String {
    let data: Data?
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        data = FileManager.default.contents(atPath: path)
    }
    guard let data else {
        let reason = FileManager.default.fileExists(atPath: path) ? "it cannot be read" : "no such file"
        throw CLIError(code: "file_not_found", message: "could not read \(what) \(path): \(reason)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw CLIError(code: "invalid_file", message: "\(what) \(path) is not UTF-8 text")
    }
    return text
}
