import ArgumentParser
import Foundation

/// `wharf env`: environments (Docker hosts and edge devices) and how their agents join.
struct EnvCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Add, list and remove environments.",
        subcommands: [EnvAddCommand.self, EnvListCommand.self, EnvRemoveCommand.self]
    )
}

/// `wharf env add NAME [--edge]`: creates an environment and prints how its agent joins.
struct EnvAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create an environment and print the command that joins its agent.",
        discussion: "The join token in the printed commands works once and expires in 24 hours."
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
        var agent = ["wharf-agent", "--server", client.server, "--join", created.joinToken, "--data-dir", agentDataDir]
        var install = ["--join", created.joinToken]
        if environment.type == "edge" {
            agent.append("--edge")
            install.append("--edge")
        }
        Console.out("""
            Environment \(environment.name) (\(environment.id), \(environment.type)) created.

            Start its agent on the Docker host:

              \(Shell.command(agent))

            or install and start it there in one line:

              curl -fsSL \(Shell.quote(client.server + "/install-agent.sh")) | sh -s -- \(Shell.command(install))

            The join token works once and expires in 24 hours.
            """)
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
        if !global.json { Console.out("Environment \(target.name) (\(target.id)) removed.") }
    }
}
