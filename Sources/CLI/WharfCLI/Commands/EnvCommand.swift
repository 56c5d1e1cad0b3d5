import ArgumentParser
import Foundation

/// `wharf env`: environments (Docker hosts and edge devices) and how their agents join.
struct EnvCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Add, list and remove environments, and join their agents.",
        subcommands: [EnvAddCommand.self, EnvJoinCommand.self, EnvListCommand.self, EnvRemoveCommand.self]
    )
}

/// `wharf env add NAME [--edge]`: creates an environment and prints how its agent joins.
struct EnvAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create an environment and print the command that joins its agent.",
        discussion: """
            The printed commands use the server's public URL (its --public-url, from /api/health), which \
            agents reach, rather than the URL this CLI uses. The join token in them works once and expires \
            in 24 hours.
            """
    )

    @Argument(help: "The environment's name, such as prod-1.")
    var name: String

    @Flag(help: "An edge environment: its agent has no permanent connection and checks in from time to time.")
    var edge = false

    @Option(help: ArgumentHelp("The agent data directory the printed command uses.", valueName: "dir"))
    var agentDataDir = "/var/lib/wharf-agent"

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let (created, data) = try await client.call(EnvironmentCreated.self, "POST", "/api/environments",
                                                    body: CreateEnvironmentRequest(name: name, type: edge ? "edge" : "agent"))
        if global.json { return Console.json(data) }
        let environment = created.environment
        try await Self.printJoin(environment, token: created.joinToken, client: client, agentDataDir: agentDataDir,
                                 headline: "Environment \(environment.name) (\(environment.id), \(environment.type)) created.")
    }

    /// Prints the two ways to start an environment's agent with a join token.
    static func printJoin(_ environment: EnvironmentInfo, token: String, client: APIClient, agentDataDir: String,
                          headline: String, footnote: String = "") async throws {
        let health = try? await client.call(Health.self, "GET", "/api/health", authenticated: false).0
        let (server, note) = Self.agentServerURL(publicURL: health?.publicUrl, cliServer: client.server)
        if let note { Console.err(note) }
        var agent = ["wharf-agent", "--server", server, "--join", token, "--data-dir", agentDataDir]
        var install = ["--join", token, "--data-dir", agentDataDir]
        if environment.type == "edge" {
            agent.append("--edge")
            install.append("--edge")
        }
        // The script stops with "no wharf-agent binary" unless one is installed or given.
        install += ["--binary", "/path/to/wharf-agent"]
        Console.out("""
            \(headline)

            Start its agent on the Docker host, where wharf-agent is installed:

              \(Shell.command(agent))

            or install it there as a systemd service and start it, as root, from a wharf-agent binary you
            built (there is no public download yet; --binary-url URL fetches one from your own host):

              curl -fsSL \(Shell.quote(server + "/install-agent.sh")) | sudo sh -s -- \(Shell.command(install))

            The join token works once and expires in 24 hours.\(footnote)
            """)
    }

    /// The URL agents reach the server at: its public URL from `/api/health`, else the CLI's own;
    /// and a note when the public URL is a loopback one the CLI did not use (a server started
    /// without `--public-url`): an agent on another host could not reach it, so the CLI's own is
    /// printed instead.
    static func agentServerURL(publicURL: String?, cliServer: String) -> (url: String, note: String?) {
        guard var url = publicURL?.trimmingCharacters(in: .whitespacesAndNewlines), !url.isEmpty else {
            return (cliServer, nil)
        }
        while url.hasSuffix("/") { url.removeLast() }
        if ServerURL.isLoopback(url), !ServerURL.isLoopback(cliServer) {
            return (cliServer, "note: the server's public URL is \(url), which agents on other hosts cannot reach; the commands below use \(cliServer). Start the server with --public-url to set it.")
        }
        return (url, nil)
    }
}

/// `wharf env join NAME|ID`: a new join token for an existing environment.
struct EnvJoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Print the command that joins an agent to an existing environment, with a new join token.",
        discussion: """
            For an agent that lost its data directory or its agent.key, or that moves to another host. \
            The agent that enrols with the new token replaces the environment's current one: the server \
            no longer accepts the old agent's key. The token works once and expires in 24 hours.
            """
    )

    @Argument(help: "The environment's name or id.")
    var environment: String

    @Option(help: ArgumentHelp("The agent data directory the printed command uses.", valueName: "dir"))
    var agentDataDir = "/var/lib/wharf-agent"

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let target = try await Lookup(client: client).environment(environment)
        let (created, data) = try await client.call(JoinTokenCreated.self, "POST", "/api/environments/\(Path.escape(target.id))/join-token")
        if global.json { return Console.json(data) }
        try await EnvAddCommand.printJoin(target, token: created.joinToken, client: client, agentDataDir: agentDataDir,
                                          headline: "New join token for environment \(target.name) (\(target.id), \(target.type)).",
                                          footnote: "\nThe agent that enrols with it replaces this environment's current agent, whose key the server then refuses.")
    }
}

/// `wharf env ls`.
struct EnvListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List environments with their link status and agent versions.", aliases: ["list"])

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (environments, data) = try await Lookup(client: try global.client()).environments()
        if global.json { return Console.json(data) }
        var table = Table("NAME", "TYPE", "STATUS", "LAST SEEN", "HOST", "AGENT", "DOCKER", "COMPOSE", "ID")
        for environment in environments {
            let agent = environment.agent
            func text(_ value: String?) -> String { value.flatMap { $0.isEmpty ? nil : $0 } ?? "-" }
            table.add(environment.name, environment.type, environment.status, TimeText.ago(environment.lastSeenAt),
                      text(agent?.hostname), text(agent?.version), text(agent?.dockerVersion), text(agent?.composeVersion),
                      environment.id)
        }
        Console.out(table.render())
    }
}

/// `wharf env rm NAME|ID`.
struct EnvRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove an environment that has no stacks left.", aliases: ["remove"])

    @Argument(help: "The environment's name or id.")
    var environment: String

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let target = try await Lookup(client: client).environment(environment)
        _ = try await client.send("DELETE", "/api/environments/\(Path.escape(target.id))")
        // The server answers 204 without a body; --json gets `{"deleted": "<id>"}`.
        if global.json { return try Console.jsonObject(["deleted": target.id]) }
        Console.out("Environment \(target.name) (\(target.id)) removed.")
    }
}
