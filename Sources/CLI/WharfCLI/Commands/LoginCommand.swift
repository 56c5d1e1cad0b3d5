import ArgumentParser
import Foundation

/// `wharf login`: checks that a server answers and accepts the token, then saves both.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Check a Wharf server and save its URL and admin token for later commands.",
        discussion: """
            Saves to $XDG_CONFIG_HOME/wharf/config.json (else ~/.config/wharf/config.json), readable by \
            you only. The token file is the server's <data-dir>/admin-token; - reads the token from stdin.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("A file holding the admin token, such as wharf-data/admin-token; - reads stdin.", valueName: "file"))
    var tokenFile: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serverText = global.server ?? environment["WHARF_SERVER"], !serverText.isEmpty else {
            throw CLIError.usage("login needs --server URL, such as --server http://wharf.example.com:9000")
        }
        let server = try ServerURL.normalize(serverText)
        if ServerURL.sendsTokenInClear(server) {
            Console.err("warning: \(server) is plain http: the admin token travels unencrypted with every command; use https:// (a TLS reverse proxy, docs/production.md)")
        }
        let token: String
        if let tokenFile {
            token = try readUserFile(tokenFile, what: "the token file").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw CLIError(code: "invalid_token", message: "the token file \(tokenFile) is empty") }
        } else if let given = global.token ?? environment["WHARF_TOKEN"], !given.isEmpty {
            token = given
        } else {
            throw CLIError.usage("login needs --token-file FILE (the server's <data-dir>/admin-token), or --token / WHARF_TOKEN")
        }
        let client = APIClient(server: server, token: token)
        let health: Health
        do {
            (health, _) = try await client.call(Health.self, "GET", "/api/health", authenticated: false)
        } catch let error as CLIError where error.code != "unreachable" && error.code != "degraded" {
            throw CLIError(code: "not_wharf", message: "\(server)/api/health did not answer as a Wharf server does: \(error.message)")
        }
        let environments: [EnvironmentInfo]
        do {
            (environments, _) = try await Lookup(client: client).environments()
        } catch let error as CLIError where error.code == "unauthorized" {
            throw CLIError(code: "unauthorized", message: "the server at \(server) answers but refused the token: \(error.message)")
        }
        let file = CLIConfig.fileURL(environment: environment)
        try CLIConfig(server: server, token: token).save(to: file)
        if global.json {
            struct LoggedIn: Encodable { var server: String; var version: String?; var environments: Int; var config: String }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Console.json(try encoder.encode(LoggedIn(server: server, version: health.version,
                                                     environments: environments.count, config: file.path)))
        } else {
            let version = health.version.map { "Wharf \($0), " } ?? ""
            Console.out("Logged in to \(server) (\(version)\(environments.count) environment\(environments.count == 1 ? "" : "s")).")
            Console.out("Settings saved to \(file.path).")
        }
    }
}
