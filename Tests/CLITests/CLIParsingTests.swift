import Foundation
import Testing
@testable import WharfCLI

struct CLIParsingTests {
    @Test func theCommandIsNamedWharf() {
        #expect(WharfCommand.configuration.commandName == "wharf")
    }

    @Test func anAgentIsToldTheURLTheCLIUsedWhenTheServersPublicURLIsLoopback() {
        let fromRemote = EnvAddCommand.agentServerURL(publicURL: "http://127.0.0.1:9000", cliServer: "http://wharf.example.com:9000")
        #expect(fromRemote.url == "http://wharf.example.com:9000")
        #expect(fromRemote.note?.contains("--public-url") == true)
        #expect(EnvAddCommand.agentServerURL(publicURL: "https://wharf.example.com/", cliServer: "http://10.0.0.5:9000") == ("https://wharf.example.com", nil))
        #expect(EnvAddCommand.agentServerURL(publicURL: "http://127.0.0.1:9000", cliServer: "http://localhost:9000") == ("http://127.0.0.1:9000", nil))
        #expect(EnvAddCommand.agentServerURL(publicURL: nil, cliServer: "http://10.0.0.5:9000") == ("http://10.0.0.5:9000", nil))
    }

    @Test func aDegradedServersHealthAnswerSaysWhyNotThatItIsNoWharfServer() {
        let url = URL(string: "https://wharf.example.com:9443/api/health")!
        let body = Data(#"{"status":"degraded","version":"0.1.0","publicUrl":"https://wharf.example.com","reason":"the database cannot be read"}"#.utf8)
        let error = APIClient.failure(status: 503, data: body, method: "GET", url: url)
        #expect(error.code == "degraded")
        #expect(error.message == "the Wharf server at https://wharf.example.com:9443 runs but is degraded: the database cannot be read")
        // Any other answer without an error envelope stays what it was.
        #expect(APIClient.failure(status: 503, data: Data("<html>".utf8), method: "GET", url: url).code == "http_503")
    }

    @Test(arguments: [
        ("30s", Duration.seconds(30)),
        ("500ms", .milliseconds(500)),
        ("5m", .seconds(300)),
        ("1h30m", .seconds(5400)),
        ("1.5s", .milliseconds(1500)),
        ("45", .seconds(45)),
        ("999999999", .seconds(999_999_999)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(DurationParser.parse(text) == expected)
    }

    @Test(arguments: ["", "fast", "10x", "-5s", "s", "5 m", "1e16", "1e9", "inf", "nan", "-1", "1e16s", "300000000h"])
    func nonDurationsAreRefused(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test func deployFlagsParse() throws {
        let command = try WharfCommand.parseAsRoot([
            "stack", "deploy", "app", "--env-name", "prod-1", "-f", "compose.yml", "--env-file", ".env",
            "-e", "TAG=v2", "-e", "EMPTY=", "--wait", "--timeout", "90s", "--json", "--health-timeout", "2m",
        ])
        let deploy = try #require(command as? StackDeployCommand)
        #expect(deploy.name == "app")
        #expect(deploy.envName == "prod-1")
        #expect(deploy.composeFile == "compose.yml")
        #expect(deploy.envFile == [".env"])
        #expect(deploy.variables == ["TAG=v2", "EMPTY="])
        #expect(deploy.waiting.wait)
        #expect(deploy.waiting.timeoutDuration == .seconds(90))
        #expect(deploy.global.json)
        #expect(deploy.healthTimeout.flatMap(StackDeployCommand.healthTimeoutSeconds) == 120)
        let plain = try #require(try WharfCommand.parseAsRoot(["stack", "deploy", "app", "--env-name", "e", "-f", "c.yml"]) as? StackDeployCommand)
        #expect(plain.healthTimeout == nil, "left out, so the server's default or the stack's own applies")
    }

    @Test(arguments: [("90s", 90), ("120", 120), ("1s", 1), ("1h", 3600), ("1m30s", 90), ("59m60s", 3600)])
    func healthTimeoutsParse(text: String, seconds: Int) {
        #expect(StackDeployCommand.healthTimeoutSeconds(text) == seconds)
    }

    @Test(arguments: ["0", "0s", "1.5s", "500ms", "1h1s", "2h", "soon"])
    func aBadHealthTimeoutIsAUsageError(text: String) {
        let error = #expect(throws: (any Error).self) {
            try WharfCommand.parseAsRoot(["stack", "deploy", "app", "--env-name", "e", "-f", "c.yml", "--health-timeout", text])
        }
        guard let error else { return }
        #expect(WharfCommand.exitCode(for: error) == .validationFailure)
        #expect(WharfCommand.message(for: error).contains("--health-timeout must be whole seconds"), "\(WharfCommand.message(for: error))")
    }

    @Test(arguments: ["soon", "1e16", "1e16s"])
    func aBadTimeoutIsAUsageError(timeout: String) {
        let error = #expect(throws: (any Error).self) {
            try WharfCommand.parseAsRoot(["stack", "redeploy", "app", "--wait", "--timeout", timeout])
        }
        guard let error else { return }
        #expect(WharfCommand.exitCode(for: error) == .validationFailure)
        #expect(WharfCommand.message(for: error).contains("--timeout must look like"), "\(WharfCommand.message(for: error))")
    }

    @Test func redeployAndLogsFlagsParse() throws {
        let redeploy = try #require(try WharfCommand.parseAsRoot(["stack", "redeploy", "app", "--no-pull", "--env-name", "edge-1"]) as? StackRedeployCommand)
        #expect(redeploy.noPull)
        #expect(redeploy.selector.envName == "edge-1")
        #expect(!redeploy.waiting.wait)
        let logs = try #require(try WharfCommand.parseAsRoot(["jobs", "logs", "job_1", "-f"]) as? JobsLogsCommand)
        #expect(logs.follow)
        let add = try #require(try WharfCommand.parseAsRoot(["env", "add", "pi", "--edge"]) as? EnvAddCommand)
        #expect(add.edge)
        #expect(add.agentDataDir == "/var/lib/wharf-agent")
    }

    @Test(arguments: [
        ("TAG=v2", "TAG", "v2"),
        ("EMPTY=", "EMPTY", ""),
        ("URL=http://x/?a=b", "URL", "http://x/?a=b"),
        ("_X1=  spaced  ", "_X1", "  spaced  "),
        ("FROM_SHELL", "FROM_SHELL", "shell value"),
    ])
    func assignmentsParse(text: String, name: String, value: String) throws {
        let assignment = try VariableAssignment.parse(text, environment: ["FROM_SHELL": "shell value"])
        #expect(assignment == VariableAssignment(name: name, value: value))
    }

    @Test(arguments: ["1TAG=x", "=x", "A-B=x", "prod-1", "NOT_IN_SHELL", "A B=c"])
    func badAssignmentsAreRefused(text: String) {
        #expect(throws: CLIError.self) { try VariableAssignment.parse(text, environment: [:]) }
    }

    @Test func assignmentsWinOverTheEnvFile() {
        let merged = VariableAssignment.merge(envFile: ["A": "file", "B": "file"],
                                              assignments: [VariableAssignment(name: "B", value: "flag"), VariableAssignment(name: "C", value: "flag")])
        #expect(merged == ["A": "file", "B": "flag", "C": "flag"])
    }

    @Test(arguments: [
        ("wharf.example.com:9000", "http://wharf.example.com:9000"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("https://wharf.example.com", "https://wharf.example.com"),
        ("https://example.com/wharf//", "https://example.com/wharf"),
    ])
    func serverURLsAreNormalised(text: String, expected: String) throws {
        #expect(try ServerURL.normalize(text) == expected)
    }

    @Test(arguments: [
        ("http://wharf.example.com:9000", true),
        ("http://10.0.0.5:9000", true),
        ("http://127.0.0.1:9000", false),
        ("http://127.1.2.3", false),
        ("http://localhost:9000", false),
        ("http://[::1]:9000", false),
        ("https://wharf.example.com", false),
        ("http://127.0.0.1.example.com", true),
    ])
    func plainHTTPToAnotherMachineIsFlagged(url: String, inClear: Bool) {
        #expect(ServerURL.sendsTokenInClear(url) == inClear, "\(url)")
    }

    @Test(arguments: ["ftp://x", "http://", "http://x?y=1"])
    func nonServerURLsAreRefused(text: String) {
        #expect(throws: CLIError.self) { try ServerURL.normalize(text) }
    }

    @Test(arguments: [
        ("plain-token_1", "plain-token_1"),
        ("http://h:1/install-agent.sh", "http://h:1/install-agent.sh"),
        ("two words", "'two words'"),
        ("it's", "'it'\\''s'"),
        ("", "''"),
    ])
    func shellQuotingOnlyWhereNeeded(word: String, expected: String) {
        #expect(Shell.quote(word) == expected)
    }

    @Test func tablesAlignColumns() {
        var table = Table("NAME", "STATUS", "ID")
        table.add("prod-1", "connected", "env_1")
        table.add("a", "-", "env_22")
        #expect(table.render() == """
            NAME    STATUS     ID
            prod-1  connected  env_1
            a       -          env_22
            """)
    }
}
