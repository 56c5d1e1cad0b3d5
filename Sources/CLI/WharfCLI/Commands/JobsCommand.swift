import ArgumentParser
import Foundation

/// `wharf jobs`: deploy and remove jobs, their state and their logs.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List jobs, show one, print or follow its log.",
        subcommands: [JobsListCommand.self, JobsShowCommand.self, JobsLogsCommand.self]
    )
}

/// `wharf jobs ls [--stack S]`.
struct JobsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List jobs, newest first.", aliases: ["list"])

    @Option(help: ArgumentHelp("Only this stack's jobs (name or id).", valueName: "stack"))
    var stack: String?

    @Option(help: ArgumentHelp("With --stack: the stack's environment (name or id).", valueName: "env"))
    var envName: String?

    @Option(help: ArgumentHelp("Only jobs in this state: queued, dispatched, running, succeeded, failed, rolled_back.", valueName: "state"))
    var state: String?

    @Option(help: "At most this many jobs (1 to 1000).")
    var limit = 50

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000") }
    }

    func run() async throws {
        let client = try global.client()
        let lookup = Lookup(client: client)
        var query = ["limit=\(limit)"]
        if let stack {
            // The jobs of a removed stack stay listable by the stack's id.
            let id: String
            do {
                id = try await lookup.stack(stack, environment: envName).id
            } catch let error as CLIError where error.code == "not_found" && stack.hasPrefix("stk_") {
                id = stack
            }
            query.append("stackId=\(Path.escape(id))")
        }
        if let state { query.append("state=\(Path.escape(state))") }
        let (list, data) = try await client.call(JobList.self, "GET", "/api/jobs?" + query.joined(separator: "&"))
        if global.json { return Console.json(data) }
        let stacks = try await lookup.stacks().0
        var table = Table("ID", "STACK", "KIND", "STATE", "TRIGGER", "CREATED", "DURATION")
        for job in list.jobs {
            table.add(job.id, stacks.first { $0.id == job.stackId }?.name ?? job.stackId, job.kind, job.state,
                      job.trigger?.source ?? "-", TimeText.ago(job.createdAt),
                      job.startedAt == nil ? "-" : TimeText.elapsed(from: job.startedAt, to: job.finishedAt))
        }
        Console.out(table.render())
    }
}

/// `wharf jobs show ID`.
struct JobsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a job: trigger, plan, result and error.")

    @Argument(help: "The job's id.")
    var id: String

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let (job, data) = try await client.job(id: id)
        if global.json { return Console.json(data) }
        let stack = try? await client.call(StackBody.self, "GET", "/api/stacks/\(Path.escape(job.stackId))").0.stack
        let environment = try? await job.environmentId.asyncMap { try await Lookup(client: client).environment($0) }
        var lines = [
            "ID:           \(job.id)",
            "Stack:        \(stack.map { "\($0.name) (\($0.id))" } ?? job.stackId)",
            "Environment:  \(environment.map { "\($0.name) (\($0.id))" } ?? job.environmentId ?? "-")",
            "Kind:         \(job.kind)",
            "State:        \(job.state)",
        ]
        if let trigger = job.trigger {
            let params = (trigger.params ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("Trigger:      \(trigger.source)\(trigger.remoteAddr.map { " from \($0)" } ?? "")\(params.isEmpty ? "" : " (\(params))")")
        }
        if let coalesced = job.coalesced, coalesced > 0 { lines.append("Coalesced:    \(coalesced) later request\(coalesced == 1 ? "" : "s")") }
        lines.append("Created:      \(job.createdAt ?? "-")")
        lines.append("Started:      \(job.startedAt ?? "-")")
        lines.append("Finished:     \(job.finishedAt ?? "-")")
        if job.startedAt != nil { lines.append("Duration:     \(TimeText.elapsed(from: job.startedAt, to: job.finishedAt))") }
        if let error = job.error { lines.append("Error:        \(error.message) (\(error.code))") }
        Console.out(lines.joined(separator: "\n"))
        func services(_ title: String, _ services: [PlannedServiceInfo]?) {
            guard let services, !services.isEmpty else { return }
            var table = Table("SERVICE", "IMAGE", "IMAGE ID")
            for service in services { table.add(service.name, service.image, service.imageId ?? "-") }
            Console.out(title + "\n" + table.render().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        services("Plan:", job.plan?.services)
        services("Result:", job.result?.services)
    }
}

/// `wharf jobs logs ID [--follow]`.
struct JobsLogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a job's log; with --follow, print new lines as they come until the job ends.")

    @Argument(help: "The job's id.")
    var id: String

    @Flag(name: [.customShort("f"), .long], help: "Keep printing new log text until the job ends.")
    var follow = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        guard follow else {
            let response = try await client.send("GET", "/api/jobs/\(Path.escape(id))/log")
            return Console.raw(response.data)
        }
        let watcher = JobWatcher(feed: client, timeout: nil, onLog: { Console.raw(Data($0.utf8)) },
                                 onLostContact: { Console.err("warning: \($0.message); asking again") })
        _ = try await watcher.watch(id)
    }
}
