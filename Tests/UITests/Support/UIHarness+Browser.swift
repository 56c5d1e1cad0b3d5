import Foundation
import Testing

/// The two sizes the UI must read well at.
enum Viewport: String, Sendable, CaseIterable {
    case desktop
    case phone

    var metrics: [String: Any] {
        switch self {
        case .desktop: ["width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false]
        case .phone: ["width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true]
        }
    }
}

extension UIHarness {
    /// Loads `route` (such as `/stacks`) in a fresh document, signed in unless `signedIn` is false.
    func open(_ route: String, signedIn: Bool = true) async throws {
        try await browser.navigate("about:blank")
        try await browser.navigate(baseURL + "/")
        if signedIn {
            try await browser.execute("sessionStorage.setItem('wharf.adminToken', arguments[0]);", [adminToken])
        } else {
            try await browser.execute("sessionStorage.clear();")
        }
        try await browser.navigate("about:blank")
        try await browser.navigate(baseURL + "/#" + route)
        try await waitForScripts()
    }

    /// Waits until the app module has run (the main element has content).
    func waitForScripts() async throws {
        try await waitUntil("the app to render", timeout: .seconds(15)) {
            try await self.browser.execute("return document.querySelector('#main') && document.querySelector('#main').childElementCount > 0;") as? Bool ?? false
        }
    }

    /// Sets the viewport exactly (CSS pixels), as a phone or a laptop would have it.
    func setViewport(_ viewport: Viewport) async throws {
        try await browser.cdp("Emulation.setDeviceMetricsOverride", viewport.metrics)
        _ = try await browser.executeAsync("requestAnimationFrame(() => requestAnimationFrame(() => arguments[0](true)));")
    }

    /// The first element matching `css`, waiting for it to appear (and be displayed unless `displayed` is false).
    @discardableResult
    func element(_ css: String, displayed: Bool = true, timeout: Duration = .seconds(20)) async throws -> Element {
        var found: Element?
        try await waitUntil("an element matching \(css)", timeout: timeout) {
            guard let element = try await self.browser.find(css) else { return false }
            if displayed, !(try await element.isDisplayed()) { return false }
            found = element
            return true
        }
        return found!
    }

    /// The trimmed visible text of the first element matching `css`.
    func text(_ css: String) async throws -> String {
        try await element(css, displayed: false).text().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits until the element's text satisfies `predicate`; returns that text.
    @discardableResult
    func waitForText(_ css: String, timeout: Duration = .seconds(20), _ what: String = "", _ predicate: (String) -> Bool) async throws -> String {
        var last = ""
        try await waitUntil("\(css) to have text \(what)", timeout: timeout, detail: { "last text: \(last)" }) {
            guard let element = try await self.browser.find(css) else { return false }
            last = try await element.text()
            return predicate(last)
        }
        return last
    }

    /// Polls `condition`; on timeout saves a screenshot and throws with the page's state.
    func waitUntil(_ what: String, timeout: Duration = .seconds(20), detail: () -> String = { "" },
                   _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while true {
            do {
                if try await condition() { return }
            } catch {
                lastError = error
            }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(150))
        }
        let shot = "failure-\(UUID().uuidString.prefix(6)).png"
        if let png = try? await browser.screenshot() {
            try? png.write(to: Paths.screenshots.appendingPathComponent(shot))
        }
        let url = (try? await browser.currentURL()) ?? "?"
        let page = (try? await browser.execute("return document.body ? document.body.innerText.slice(0, 1500) : '';") as? String) ?? ""
        throw HarnessError("""
            Timed out after \(timeout) waiting for \(what). \(detail())
            URL: \(url); screenshot: .build/ui-screenshots/\(shot)\(lastError.map { "; last error: \($0)" } ?? "")
            Page text:
            \(page)
            """)
    }

    /// Saves screenshots of the page at both sizes as `<name>-desktop.png` and `<name>-phone.png`,
    /// scrolled so that `scrollTo` (a CSS selector) is at the top when given.
    func screenshots(_ name: String, scrollTo: String? = nil) async throws {
        for viewport in Viewport.allCases {
            try await setViewport(viewport)
            if let scrollTo {
                try await browser.execute("""
                    const el = document.querySelector(arguments[0]);
                    if (el) el.scrollIntoView({block: 'start'});
                    """, [scrollTo])
            } else {
                try await browser.execute("window.scrollTo(0, 0);")
            }
            // Let transitions and the next poll settle.
            try await Task.sleep(for: .milliseconds(350))
            let png = try await browser.screenshot()
            try png.write(to: Paths.screenshots.appendingPathComponent("\(name)-\(viewport.rawValue).png"))
        }
        try await setViewport(.desktop)
    }

    /// Clicks the first element matching `css` once it is displayed.
    func click(_ css: String) async throws {
        try await element(css).click()
    }

    /// Replaces the text of an input or textarea by typing, as a person would.
    func type(_ css: String, _ text: String) async throws {
        let field = try await element(css)
        try await field.clear()
        try await field.sendKeys(text)
    }

    /// Uncaught exceptions and unhandled promise rejections in the page since the last call.
    /// (Failed requests the UI handles, such as a 401 or 409 it shows, are not script errors.)
    func scriptErrors() async throws -> [String] {
        try await browser.consoleEntries()
            .filter { $0["source"] as? String == "javascript" }
            .map { $0["message"] as? String ?? "?" }
    }

    /// A JSON-ish value of a script.
    func script<T>(_ source: String, _ arguments: [Any] = [], as type: T.Type = T.self) async throws -> T? {
        try await browser.execute(source, arguments) as? T
    }
}
