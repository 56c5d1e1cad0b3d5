import ArgumentParser
import Foundation

/// `wharf stack`: compose stacks, addressed by name (with `--env-name` when a name is on several
/// environments) or by id.
struct StackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stack",
        abstract: "Deploy, inspect, redeploy and remove compose stacks.",
        subcommands: [StackDeployCommand.self, StackListCommand.self, StackShowCommand.self, StackConfigCommand.self,
                      StackRedeployCommand.self, StackRemoveCommand.self]
    )
}

/// Names a stack: by name or id, on one environment when given.
struct StackSelector: ParsableArguments {
    @Argument(help: "The stack's name or id.")
    var stack: String

    @Option(help: ArgumentHelp("The stack's environment (name or id), when its name is used on several.", valueName: "env"))
    var envName: String?

    func resolve(_ client: APIClient) async throws -> StackInfo {
        try await Lookup(client: client).stack(stack, environment: envName)
    }
}

/// Follows a job for `--wait` and turns its failure into the command's.
///
/// With `--json` the finished job's JSON is printed whatever its end, before a failed or rolled-back
/// job makes the command fail, so a script gets both the job (with its error) and a non-zero status.
func waitForJob(_ jobId: String, feed: any JobFeed, options: WaitOptions, json: Bool,
                printJSON: (Data) -> Void = Console.json) async throws {
    let printer = ProgressPrinter(toStandardError: json)
    let (job, data) = try await printer.watcher(feed: feed, timeout: options.timeoutDuration).watch(jobId)
    if json { printJSON(data) }
    try JobWatcher.requireSuccess(job)
}

/// `wharf stack deploy NAME --env-name ENV -f compose.yml`.
struct StackDeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Create a stack, or update and redeploy the stack of that name on that environment.",
        discussion: """
            The stack's variables are the --env-file files' (read as docker compose reads .env files; later \
            files win) and then each -e KEY=VALUE. When updating a stack without --env-file or -e, its \
            variables stay as they are; with either, they are replaced by exactly the given ones. \
            --health-timeout is kept in the same way: a new stack without it waits 60s, an updated one keeps its own.
            With --json, prints the server's answer, or with --wait the finished job (progress goes to stderr), \
            also when it failed or was rolled back (the exit status is then non-zero).
            """
    )

    @Argument(help: "The stack's name: a-z, 0-9, _ and -, starting with a letter or digit.")
    var name: String

    @Option(help: ArgumentHelp("The environment (name or id) to deploy to.", valueName: "env"))
    var envName: String

    @Option(name: [.customShort("f"), .customLong("file")], help: ArgumentHelp("The compose file; - reads stdin.", valueName: "file"))
    var composeFile: String

    @Option(help: ArgumentHelp("A .env file of stack variables; may be repeated.", valueName: "file"))
    var envFile: [String] = []

    @Option(name: [.customShort("e"), .customLong("env")],
            help: ArgumentHelp("A stack variable, KEY=VALUE (or KEY, taken from this shell); may be repeated.", valueName: "KEY=VALUE"))
    var variables: [String] = []

    @Option(help: ArgumentHelp("How long each deploy waits for every container to run and be healthy before it rolls back, "
                               + "such as 90s, 5m or 120 (seconds): whole seconds from 1s to 1h.", valueName: "duration"))
    var healthTimeout: String?

    @OptionGroup var waiting: WaitOptions
    @OptionGroup var global: GlobalOptions

    /// `text` as the whole seconds the server takes for a stack's health timeout (1 to 3600), or nil.
    static func healthTimeoutSeconds(_ text: String) -> Int? {
        guard let duration = DurationParser.parse(text) else { return nil }
        let (seconds, attoseconds) = duration.components
        guard attoseconds == 0, (1...3600).contains(seconds) else { return nil }
        return Int(seconds)
    }

    func validate() throws {
        if let healthTimeout, Self.healthTimeoutSeconds(healthTimeout) == nil {
            throw ValidationError("--health-timeout must be whole seconds from 1s to 1h, such as 90s, 5m or 120")
        }
    }

    func run() async throws {
        let shell = ProcessInfo.processInfo.environment
        let assignments = try variables.map { try VariableAssignment.parse($0, environment: shell) }
        let compose = try readUserFile(composeFile, what: "the compose file")
        let fileVariables = try DotEnv.parse(files: envFile.map { (name: $0, text: try readUserFile($0, what: "the env file")) }) { shell[$0] }
        let env = VariableAssignment.merge(envFile: fileVariables, assignments: assignments)
        let setsVariables = !envFile.isEmpty || !assignments.isEmpty
        let healthTimeout = self.healthTimeout.flatMap(Self.healthTimeoutSeconds)

        let client = try global.client()
        let lookup = Lookup(client: client)
        let environment = try await lookup.environment(envName)
        let existing = try await lookup.stacks(environmentId: environment.id).0.first { $0.name == name }
        let result: StackAndJob
        let data: Data
        if let existing {
            (result, data) = try await client.call(StackAndJob.self, "PUT", "/api/stacks/\(Path.escape(existing.id))",
                                                   body: UpdateStackRequest(compose: compose, env: setsVariables ? env : nil,
                                                                            healthTimeout: healthTimeout))
        } else {
            (result, data) = try await client.call(StackAndJob.self, "POST", "/api/stacks",
                                                   body: CreateStackRequest(name: name, environmentId: environment.id, compose: compose, env: env,
                                                                            healthTimeout: healthTimeout))
        }
        let printer = ProgressPrinter(toStandardError: global.json)
        if !global.json {
            Console.out("Stack \(result.stack.name) (\(result.stack.id)) \(existing == nil ? "created" : "updated") on \(environment.name); deploy job \(result.job.id) queued.")
        }
        guard waiting.wait else {
            if global.json { Console.json(data) }
            return
        }
        if environment.type == "edge" {
            printer.line("note: \(environment.name) is an edge environment; the job runs at its agent's next check-in.")
        } else if environment.status != "connected" {
            printer.line("note: \(environment.name) is \(environment.status); the job runs when its agent connects.")
        }
        try await waitForJob(result.job.id, feed: client, options: waiting, json: global.json)
    }
}

/// `wharf stack ls`.
struct StackListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List stacks.", aliases: ["list"])

    @Option(help: ArgumentHelp("Only the stacks of this environment (name or id).", valueName: "env"))
    var envName: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let lookup = Lookup(client: try global.client())
        let scope = try await envName.asyncMap { try await lookup.environment($0) }
        let (stacks, data) = try await lookup.stacks(environmentId: scope?.id)
        if global.json { return Console.json(data) }
        let environments = try await lookup.environments().0
        var table = Table("NAME", "ENVIRONMENT", "STATUS", "SERVICES", "WEBHOOK", "LAST JOB", "ID")
        for stack in stacks {
            let services = (stack.services ?? []).map { "\($0.name)=\($0.image)" }.joined(separator: ", ")
            table.add(stack.name, environments.first { $0.id == stack.environmentId }?.name ?? stack.environmentId,
                      stack.status, services.isEmpty ? "-" : services, stack.webhook == nil ? "off" : "on",
                      stack.lastJobId ?? "-", stack.id)
        }
        Console.out(table.render())
    }
}

/// `wharf stack show NAME`.
struct StackShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a stack: status, variables, services, webhook.")

    @OptionGroup var selector: StackSelector
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let found = try await selector.resolve(client)
        let (body, data) = try await client.call(StackBody.self, "GET", "/api/stacks/\(Path.escape(found.id))")
        if global.json { return Console.json(data) }
        let stack = body.stack
        let environment = try? await Lookup(client: client).environment(stack.environmentId)
        var lines = [
            "Name:         \(stack.name)",
            "ID:           \(stack.id)",
            "Environment:  \(environment.map { "\($0.name) (\($0.id), \($0.status))" } ?? stack.environmentId)",
            "Status:       \(stack.status)",
            "Health wait:  \(stack.healthTimeout.map { "up to \(DurationParser.format(.seconds($0)))" } ?? "-")",
            "Webhook:      \(stack.webhook?.url ?? "off")",
            "Last job:     \(stack.lastJobId ?? "-")",
            "Created:      \(stack.createdAt ?? "-")",
            "Updated:      \(stack.updatedAt ?? "-")",
        ]
        let env = stack.env ?? [:]
        lines.append("Variables:" + (env.isEmpty ? "    none" : ""))
        for key in env.keys.sorted() { lines.append("  \(key)=\(env[key]!)") }
        Console.out(lines.joined(separator: "\n"))
        let services = stack.services ?? []
        if services.isEmpty {
            Console.out("Services:     none running yet")
        } else {
            var table = Table("SERVICE", "IMAGE", "IMAGE ID", "CONTAINERS")
            for service in services {
                table.add(service.name, service.image, service.imageId ?? "-", service.containers.map(String.init) ?? "-")
            }
            Console.out("Services:\n" + table.render().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
    }
}

/// `wharf stack config NAME`.
struct StackConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Print a stack's compose file after interpolation, as `docker compose config` does.")

    @OptionGroup var selector: StackSelector
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        let (config, data) = try await client.call(ComposeConfig.self, "GET", "/api/stacks/\(Path.escape(stack.id))/config")
        if global.json { return Console.json(data) }
        Console.raw(Data(config.config.utf8))
        if !config.config.hasSuffix("\n") { Console.out("") }
    }
}

/// `wharf stack redeploy NAME [--no-pull] [--wait]`.
struct StackRedeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redeploy", abstract: "Redeploy a stack as it is: pull its images and recreate what changed.")

    @OptionGroup var selector: StackSelector

    @Flag(help: "Do not pull the images first.")
    var noPull = false

    @OptionGroup var waiting: WaitOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        let (body, data) = try await client.call(JobBody.self, "POST", "/api/stacks/\(Path.escape(stack.id))/redeploy",
                                                 body: RedeployRequest(pullImage: !noPull))
        if !global.json { Console.out("Redeploy of \(stack.name) queued: job \(body.job.id).") }
        guard waiting.wait else {
            if global.json { Console.json(data) }
            return
        }
        try await waitForJob(body.job.id, feed: client, options: waiting, json: global.json)
    }
}

/// `wharf stack rm NAME [--wait]`.
struct StackRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a stack: its agent runs compose down, then the stack disappears.",
        discussion: """
            --forget deletes the stack at once without its agent, for a node that is gone for good: its \
            unfinished jobs end failed (stack_forgotten) and its containers, if the node comes back, are left \
            as they are.
            """,
        aliases: ["remove"]
    )

    @OptionGroup var selector: StackSelector
    @Flag(help: "Delete the stack without its agent (a node that is gone); its containers are not touched.")
    var forget = false
    @OptionGroup var waiting: WaitOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if forget && waiting.wait { throw ValidationError("--forget ends at once: there is no job to --wait for") }
    }

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        if forget {
            let (body, data) = try await client.call(ForgottenBody.self, "DELETE", "/api/stacks/\(Path.escape(stack.id))?forget=true")
            if global.json { return Console.json(data) }
            let ended = body.endedJobs.isEmpty ? "" : " (\(body.endedJobs.count) unfinished job\(body.endedJobs.count == 1 ? "" : "s") ended failed)"
            Console.out("Stack \(stack.name) forgotten\(ended); its containers were not touched.")
            return
        }
        let (body, data) = try await client.call(JobBody.self, "DELETE", "/api/stacks/\(Path.escape(stack.id))")
        if !global.json { Console.out("Removal of \(stack.name) queued: job \(body.job.id).") }
        guard waiting.wait else {
            if global.json { Console.json(data) }
            return
        }
        try await waitForJob(body.job.id, feed: client, options: waiting, json: global.json)
        if !global.json { Console.out("Stack \(stack.name) removed.") }
    }
}
