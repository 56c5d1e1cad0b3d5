import ArgumentParser
import Foundation

/// `wharf webhook`: a stack's secret redeploy URL. `enable` and `rotate` print the URL alone, so
/// `URL=$(wharf webhook enable app)` works.
struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Enable, disable and rotate a stack's webhook URL.",
        subcommands: [WebhookEnableCommand.self, WebhookDisableCommand.self, WebhookRotateCommand.self]
    )
}

/// Prints a webhook URL alone, or `{"url": …}` with `--json`.
private func printURL(_ url: String, data: Data?, json: Bool) throws {
    guard json else { return Console.out(url) }
    if let data { return Console.json(data) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    Console.json(try encoder.encode(["url": url]))
}

/// `wharf webhook enable STACK`.
struct WebhookEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Give a stack a webhook URL (or keep the one it has) and print it alone on stdout.",
        discussion: """
            POST to the URL redeploys the stack (query tag=T, pullimage=false, wait=N, KEY=VALUE). When the \
            stack already has a webhook, its URL is printed unchanged; `wharf webhook rotate` makes a new one. \
            Stacks on edge environments cannot have webhooks.
            """
    )

    @OptionGroup var selector: StackSelector
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        if let webhook = stack.webhook {
            return try printURL(webhook.url, data: nil, json: global.json)
        }
        let (body, data) = try await client.call(WebhookURLBody.self, "POST", "/api/stacks/\(Path.escape(stack.id))/webhook")
        try printURL(body.url, data: data, json: global.json)
    }
}

/// `wharf webhook disable STACK`.
struct WebhookDisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Remove a stack's webhook; its URL then answers 404.")

    @OptionGroup var selector: StackSelector
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        _ = try await client.send("DELETE", "/api/stacks/\(Path.escape(stack.id))/webhook")
        // The server answers 204 without a body; --json gets `{"disabled": "<stack id>"}`.
        if global.json { return try Console.jsonObject(["disabled": stack.id]) }
        Console.out("Webhook of \(stack.name) disabled; its URL now answers 404.")
    }
}

/// `wharf webhook rotate STACK`.
struct WebhookRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate", abstract: "Replace a stack's webhook URL with a new one, printed alone; the old one answers 404.")

    @OptionGroup var selector: StackSelector
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = try global.client()
        let stack = try await selector.resolve(client)
        let (body, data) = try await client.call(WebhookURLBody.self, "POST", "/api/stacks/\(Path.escape(stack.id))/webhook/rotate")
        try printURL(body.url, data: data, json: global.json)
    }
}
