import Foundation
import WharfAgent

/// What went wrong talking to chromedriver: its W3C error code and message, or a transport failure.
struct WebDriverError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A tiny W3C WebDriver client: just the commands the UI tests use.
///
/// It talks through the agent's HTTP/1.1 client, not URLSession: FoundationNetworking in Swift 6.3
/// rejects header lines without a space after the colon (`Content-Length:250`), which is how
/// chromedriver writes every header (swift-corelibs-foundation #5527, fixed for 6.4).
struct WebDriver: Sendable {
    /// chromedriver's port on 127.0.0.1.
    let port: Int

    /// Screenshots come back as base64 PNGs of a few MiB.
    private static let http = AgentHTTPClient(timeout: .seconds(120), responseLimit: 64 << 20)

    /// Sends one command; answers the `value` of the response, throwing the W3C error when there is one.
    @discardableResult
    func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        var payload: Data?
        if let body {
            payload = try JSONSerialization.data(withJSONObject: body)
        } else if method == "POST" {
            payload = Data("{}".utf8)
        }
        let response = try await Self.http.send(AgentHTTPRequest(
            method: method, url: "http://127.0.0.1:\(port)/\(path)",
            headers: [("Accept", "application/json")] + (payload == nil ? [] : [("Content-Type", "application/json; charset=utf-8")]),
            body: payload.map { Array($0) }))
        let status = response.status
        let data = Data(response.body)
        let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        let value = (object as? [String: Any])?["value"]
        if status >= 300 || status == 0 {
            let error = value as? [String: Any]
            let code = error?["error"] as? String ?? "http \(status)"
            let message = (error?["message"] as? String ?? String(decoding: data, as: UTF8.self)).split(separator: "\n").first.map(String.init) ?? ""
            throw WebDriverError(message: "\(method) /\(path): \(code): \(message)")
        }
        return value is NSNull ? nil : value
    }

    /// Whether chromedriver answers `/status` with `ready: true`.
    func isReady() async -> Bool {
        guard let value = try? await command("GET", "status") as? [String: Any] else { return false }
        return value["ready"] as? Bool ?? false
    }

    /// Starts headless Chromium (`--headless=new --no-sandbox --window-size=1280,800`).
    func newSession() async throws -> BrowserSession {
        let chromeOptions: [String: Any] = [
            "args": ["--headless=new", "--no-sandbox", "--window-size=1280,800", "--disable-dev-shm-usage",
                     "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb", "--lang=en-US",
                     "--disable-features=Translate,MediaRouter", "--no-first-run"],
        ]
        let value = try await command("POST", "session", [
            "capabilities": ["alwaysMatch": [
                "browserName": "chrome",
                "goog:chromeOptions": chromeOptions,
                "goog:loggingPrefs": ["browser": "ALL"],
                "unhandledPromptBehavior": "ignore",
            ] as [String: Any]],
        ])
        guard let id = (value as? [String: Any])?["sessionId"] as? String else {
            throw WebDriverError(message: "chromedriver gave no session id: \(String(describing: value))")
        }
        return BrowserSession(driver: self, id: id)
    }
}

/// One browser session.
struct BrowserSession: Sendable {
    let driver: WebDriver
    let id: String

    private static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    @discardableResult
    func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        try await driver.command(method, "session/\(id)" + (path.isEmpty ? "" : "/\(path)"), body)
    }

    func navigate(_ url: String) async throws { try await command("POST", "url", ["url": url]) }
    func currentURL() async throws -> String { try await command("GET", "url") as? String ?? "" }
    func delete() async { _ = try? await command("DELETE", "") }

    /// The first element matching a CSS selector, or nil.
    func find(_ css: String) async throws -> Element? {
        let value = try await command("POST", "elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return value.first.flatMap { $0[Self.elementKey] as? String }.map { Element(session: self, id: $0) }
    }

    /// Every element matching a CSS selector.
    func findAll(_ css: String) async throws -> [Element] {
        let value = try await command("POST", "elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return value.compactMap { $0[Self.elementKey] as? String }.map { Element(session: self, id: $0) }
    }

    /// Runs JavaScript in the page; `arguments` are available as `arguments[i]`.
    @discardableResult
    func execute(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "execute/sync", ["script": script, "args": arguments])
    }

    /// Runs asynchronous JavaScript; it calls `arguments[arguments.length - 1](result)` when done.
    func executeAsync(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "execute/async", ["script": script, "args": arguments])
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        guard let base64 = try await command("GET", "screenshot") as? String, let data = Data(base64Encoded: base64) else {
            throw WebDriverError(message: "the screenshot was not base64 PNG data")
        }
        return data
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    @discardableResult
    func cdp(_ cmd: String, _ params: [String: Any] = [:]) async throws -> Any? {
        try await command("POST", "goog/cdp/execute", ["cmd": cmd, "params": params])
    }

    /// The browser console entries since the last call (chromedriver's log, drained by reading).
    func consoleEntries() async throws -> [[String: Any]] {
        try await command("POST", "se/log", ["type": "browser"]) as? [[String: Any]] ?? []
    }

    /// Sends keys to whatever has focus (W3C actions), e.g. `"\u{E004}"` for Tab.
    func pressKeys(_ keys: String) async throws {
        var actions: [[String: Any]] = []
        for scalar in keys.unicodeScalars {
            actions.append(["type": "keyDown", "value": String(scalar)])
            actions.append(["type": "keyUp", "value": String(scalar)])
        }
        try await command("POST", "actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
        try await command("DELETE", "actions")
    }
}

/// An element of the page.
struct Element: Sendable {
    let session: BrowserSession
    let id: String

    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        try await session.command(method, "element/\(id)/\(path)", body)
    }

    func click() async throws { _ = try await command("POST", "click") }
    func clear() async throws { _ = try await command("POST", "clear") }
    func sendKeys(_ text: String) async throws { _ = try await command("POST", "value", ["text": text]) }
    func text() async throws -> String { try await command("GET", "text") as? String ?? "" }
    func isEnabled() async throws -> Bool { try await command("GET", "enabled") as? Bool ?? false }
    func isDisplayed() async throws -> Bool { try await command("GET", "displayed") as? Bool ?? false }
    func attribute(_ name: String) async throws -> String? { try await command("GET", "attribute/\(name)") as? String }
    func property(_ name: String) async throws -> Any? { try await command("GET", "property/\(name)") }
    /// The element as a script argument.
    var reference: [String: String] { ["element-6066-11e4-a52e-4f735466cecf": id] }
}

/// Special keys of the W3C key table.
enum Key {
    static let tab = "\u{E004}"
    static let enter = "\u{E007}"
    static let control = "\u{E009}"
    static let escape = "\u{E00C}"
    static let backspace = "\u{E003}"
}
