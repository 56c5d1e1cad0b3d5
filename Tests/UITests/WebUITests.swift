import Foundation
import Testing
import WharfTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The web UI in a real headless Chromium, against a real `wharf-server` and a simulated
/// `wharf-agent`: the seed's flow (Stacks → Edit → Webhooks → toggle → Copy link) and the pages
/// around it. Screenshots at 1280×800 and 390×844 go to `.build/ui-screenshots/`.
@Suite(.serialized, .uiHarness, .timeLimit(.minutes(10)))
struct WebUITests {
    var ui: UIHarness {
        get throws { try UIHarness.required() }
    }

    // MARK: - Sign-in

    @Test("Sign-in checks the admin token and keeps it in sessionStorage, never in the URL", .timeLimit(.minutes(3)))
    func signIn() async throws {
        let ui = try ui
        try await ui.open("/stacks", signedIn: false)
        try await ui.element("#signin-form #token")
        try await ui.screenshots("01-sign-in")

        try await ui.type("#token", "not-the-token")
        try await ui.click("#signin-submit")
        let refusal = try await ui.waitForText("#signin-error", "a refusal") { !$0.isEmpty }
        #expect(refusal.contains("did not accept"))
        #expect(try await ui.script("return sessionStorage.getItem('wharf.adminToken');", as: String.self) == nil)

        try await ui.type("#token", ui.adminToken)
        try await ui.click("#signin-submit")
        try await ui.waitForText("#main h1", "Stacks") { $0 == "Stacks" }
        #expect(try await ui.script("return sessionStorage.getItem('wharf.adminToken');", as: String.self) == ui.adminToken)
        #expect(try await ui.script("return localStorage.length;", as: Int.self) == 0)
        #expect(try await ui.script("return document.cookie;", as: String.self) == "")
        let url = try await ui.browser.currentURL()
        #expect(!url.contains(ui.adminToken), "the token leaked into the URL \(url)")
        #expect(url.hasSuffix("#/stacks"))

        // Signing out forgets it.
        try await ui.click("#sign-out")
        try await ui.element("#signin-form #token")
        #expect(try await ui.script("return sessionStorage.getItem('wharf.adminToken');", as: String.self) == nil)
        #expect(try await ui.scriptErrors() == [])
    }

    // MARK: - Environments

    @Test("Add environment shows the exact agent commands, and the enrolled agent shows up connected with its versions",
          .timeLimit(.minutes(3)))
    func addEnvironment() async throws {
        let ui = try ui
        try await ui.open("/environments")
        try await ui.click("#add-environment")
        try await ui.type("#env-name", "prod-1")
        try await ui.click("#env-type-agent")
        try await ui.click("#create-environment")

        let command = try await ui.waitForText("[data-example=agent-command] pre", "the agent command") { !$0.isEmpty }
        let install = try await ui.text("[data-example=install-command] pre")
        let pattern = try Regex(#"^wharf-agent --server (\S+) --join (\S+) --data-dir /var/lib/wharf-agent$"#)
        let match = try #require(command.wholeMatch(of: pattern), "unexpected command: \(command)")
        let origin = String(match.output[1].substring ?? "")
        let join = String(match.output[2].substring ?? "")
        #expect(origin == ui.baseURL)
        #expect(install == "curl -fsSL \(ui.baseURL)/install-agent.sh | sudo sh -s -- --join \(join) --binary /path/to/wharf-agent")

        // The command's token really enrols an agent.
        _ = try ui.startAgent(name: "prod-1", join: join)
        try await ui.waitForText("#new-env-status", timeout: .seconds(30), "connected") { $0.contains("connected") }
        try await ui.screenshots("03-environment-added")

        try await ui.click("#environment-created a[href='#/environments']")
        let row = "[data-env-name='prod-1']"
        let text = try await ui.waitForText(row, timeout: .seconds(20), "connected with versions") {
            $0.contains("connected") && $0.contains("seen") && $0.contains("wharf-agent ")
        }
        #expect(text.contains("AGENT") || text.lowercased().contains("agent"))
        #expect(try await ui.element("\(row) .badge").attribute("data-state") == "connected")

        // Edge environments get --edge on both commands.
        try await ui.open("/environments/new")
        try await ui.type("#env-name", "edge-1")
        try await ui.click("#env-type-edge")
        try await ui.click("#create-environment")
        let edgeCommand = try await ui.waitForText("[data-example=agent-command] pre", "the edge command") { !$0.isEmpty }
        #expect(edgeCommand.hasSuffix(" --data-dir /var/lib/wharf-agent --edge"))
        #expect(try await ui.text("[data-example=install-command] pre").hasSuffix(" --edge --binary /path/to/wharf-agent"))

        try await ui.open("/environments")
        try await ui.waitForText("[data-env-name='edge-1']", "pending") { $0.contains("pending") }
        try await ui.waitForText("[data-env-name='prod-1']", "connected") { $0.contains("connected") }
        try await ui.screenshots("02-environments")
        #expect(try await ui.scriptErrors() == [])
    }

    // MARK: - Stacks

    @Test("Add stack points at the compose error's line, previews the resolved config once fixed, and deploys",
          .timeLimit(.minutes(3)))
    func addStackWithComposeError() async throws {
        let ui = try ui
        try await ui.open("/stacks/new")
        try await ui.type("#stack-name", "web")
        try await ui.waitUntil("the environments to load") {
            try await ui.script("return [...document.querySelectorAll('#stack-environment option')].some(o => o.value === arguments[0]);",
                                [ui.dockEnvironmentId], as: Bool.self) ?? false
        }
        try await ui.click("#stack-environment option[value='\(ui.dockEnvironmentId)']")

        // Line 4 is indented wrongly: YAML cannot parse it.
        let broken = "services:\n  web:\n    image: nginx:${TAG:-1.27}\n   restart: always\n"
        try await ui.type("#compose", broken)
        try await ui.type(".env-key", "TAG")
        try await ui.type(".env-value", "1.27-alpine")
        try await ui.click("#preview-stack")

        let message = try await ui.waitForText(".compose-error-message", "the server's compose error") { !$0.isEmpty }
        let (_, rendered) = try await ui.api.call("POST", "/api/compose/render", json: ["compose": broken, "env": ["TAG": "1.27-alpine"]], expect: 422)
        #expect(message == (rendered["error"] as? [String: Any])?["message"] as? String)
        let line = try #require(message.firstMatch(of: /line (\d+)/).map { Int($0.output.1)! }, "no line in: \(message)")
        let marked = try await ui.text(".editor-gutter .ln.error")
        #expect(marked == String(line), "the gutter marks line \(marked), the message says line \(line)")
        #expect(try await ui.element("[data-editor=compose]").attribute("data-error-line") == String(line))
        #expect(try await ui.element("#deploy-stack", displayed: false).isEnabled() == false)
        try await ui.screenshots("05-stack-compose-error", scrollTo: "[data-editor=compose]")

        // An error named by its path (a required variable without a value) points at that key's line.
        try await ui.type("#compose", "services:\n  web:\n    image: nginx:${WEB_TAG:?set WEB_TAG}\n    restart: always\n")
        let pathMessage = try await ui.waitForText(".compose-error-message", "the required-variable error") { $0.contains("WEB_TAG") }
        #expect(pathMessage.hasPrefix("services.web.image:"))
        try await ui.waitForText(".editor-gutter .ln.error", "line 3 marked") { $0 == "3" }

        // Fix it; the preview follows the edit and shows the interpolated image.
        try await ui.type("#compose", "services:\n  web:\n    image: nginx:${TAG:-1.27}\n    restart: always\n")
        try await ui.waitUntil("the error to clear and the preview to show") {
            try await ui.script("return !document.querySelector('.compose-error-message') && !document.querySelector('#preview').hidden;", as: Bool.self) ?? false
        }
        #expect(try await ui.browser.find(".editor-gutter .ln.error") == nil)
        let services = try await ui.text("#preview-services tbody")
        #expect(services.contains("web") && services.contains("nginx:1.27-alpine"))
        #expect(try await ui.text("#resolved-config").contains("image: nginx:1.27-alpine"))
        try await ui.screenshots("06-stack-preview", scrollTo: "#preview")

        // A health timeout out of range is refused in the form; nothing is created.
        #expect(try await ui.element("#stack-health-timeout").property("value") as? String == "60")
        try await ui.type("#stack-health-timeout", "0")
        try await ui.click("#deploy-stack")
        let timeoutError = try await ui.waitForText("#stack-health-timeout-error", "the field's error") { !$0.isEmpty }
        #expect(timeoutError.contains("1 to 3600"), "\(timeoutError)")
        let (_, none) = try await ui.api.call("GET", "/api/stacks", expect: 200)
        #expect(!((none["stacks"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "web" })
        try await ui.type("#stack-health-timeout", "120")

        try await ui.click("#deploy-stack")
        try await ui.waitUntil("the stack page") { try await ui.browser.currentURL().contains("#/stacks/stk_") }
        try await ui.waitForText("#stack-title", "web") { $0 == "web" }
        let (_, stacks) = try await ui.api.call("GET", "/api/stacks", expect: 200)
        let created = ((stacks["stacks"] as? [[String: Any]]) ?? []).first { $0["name"] as? String == "web" }
        #expect(created?["healthTimeout"] as? Int == 120, "\(String(describing: created))")
        try await ui.waitForText("#stack-status", timeout: .seconds(30), "running") { $0 == "running" }
        try await ui.waitForText("#stack-jobs", timeout: .seconds(20), "a succeeded deploy") { $0.contains("succeeded") && $0.contains("deploy") }
        try await ui.waitForText("#stack-services", "the deployed service") { $0.contains("nginx:1.27-alpine") }
        try await ui.screenshots("07-stack-overview")

        try await ui.open("/stacks")
        let row = try await ui.waitForText("[data-stack-name='web']", "the stack row") { $0.contains("running") }
        #expect(row.contains("dock-1") && row.contains("nginx:1.27-alpine") && row.contains("succeeded") && row.contains("Off"))
        #expect(try await ui.scriptErrors() == [])
    }

    // MARK: - The seed's flow

    @Test("Stacks → Edit → Webhooks → toggle → Copy link; a POST to the copied URL runs a job the Jobs page follows to its end",
          .timeLimit(.minutes(4)))
    func webhookFlow() async throws {
        let ui = try ui
        let stackId = try await createStack(ui, name: "shop", environmentId: ui.dockEnvironmentId,
                                            compose: "services:\n  shop:\n    image: ghcr.io/acme/shop:${SHOP_TAG:-stable}\n  cache:\n    image: redis:7\n")

        // Pick the stack, open its Edit tab, scroll to Webhooks.
        try await ui.open("/stacks")
        try await ui.click("[data-stack-name='shop'] a.primary-link")
        try await ui.waitForText("#stack-title", "shop") { $0 == "shop" }
        try await ui.click("#tab-edit")
        let toggle = try await ui.element("#webhook-toggle", displayed: false)
        try await ui.browser.execute("arguments[0].scrollIntoView({block: 'center'});", [toggle.reference])
        #expect(try await toggle.property("checked") as? Bool == false)
        #expect(try await ui.text("#webhooks label.switch") == "Create a stack webhook")

        // Switch on "Create a stack webhook".
        try await toggle.click()
        let urlField = try await ui.element("#webhook-url")
        var url = ""
        try await ui.waitUntil("the webhook URL") {
            url = try await urlField.property("value") as? String ?? ""
            return !url.isEmpty
        }
        #expect(url.hasPrefix(ui.baseURL + "/api/stacks/webhooks/"))
        let (_, stackBody) = try await ui.api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect(((stackBody["stack"] as? [String: Any])?["webhook"] as? [String: Any])?["url"] as? String == url)

        // Copy link: the clipboard holds the URL and the page confirms it.
        try await ui.click("#copy-webhook-url")
        try await ui.waitForText("#copy-status", "the confirmation") { $0.contains("copied") }
        #expect(try await ui.element("#copy-webhook-url").attribute("data-copied") == url)
        let clipboard = try await ui.browser.executeAsync("""
            const done = arguments[arguments.length - 1];
            navigator.clipboard.readText().then(done, (e) => done('clipboard error: ' + e));
            """) as? String
        #expect(clipboard == url)
        try await ui.screenshots("08-stack-webhook-on", scrollTo: "#webhooks")

        // Where the Clipboard API is missing (plain http on a LAN address), Copy link falls back to
        // selecting the URL and document.execCommand("copy"): the clipboard still gets the URL.
        let fallback = try await ui.browser.executeAsync("""
            const done = arguments[arguments.length - 1];
            navigator.clipboard.writeText('something else').then(() => {
              Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true });
              document.querySelector('#copy-webhook-url').click();
              setTimeout(() => {
                const input = document.querySelector('#webhook-url');
                const selected = input.value.slice(input.selectionStart, input.selectionEnd);
                delete navigator.clipboard;
                navigator.clipboard.readText().then((text) => done([selected, text]), (e) => done(['', 'error ' + e]));
              }, 200);
            });
            """) as? [String]
        #expect(fallback == [url, url], "fallback copy: \(String(describing: fallback))")

        // Ready-to-paste examples.
        #expect(try await ui.text("[data-example=curl] pre") == "curl -X POST \"\(url)\"")
        #expect(try await ui.text("[data-example=tag] pre") == "curl -X POST \"\(url)?tag=v2\"")
        #expect(try await ui.text("[data-example=variable] pre") == "curl -X POST \"\(url)?SHOP_TAG=development\"")
        // The example never names a `$$` literal or a variable the server would refuse.
        let picked = try await ui.browser.executeAsync("""
            const done = arguments[arguments.length - 1];
            import(new URL('js/views/webhook.js', document.baseURI).href).then((m) => done([
              m.firstVariable('command: echo $$HOME\\nimage: app:${PATH}-${COMPOSE_PROFILES}-${tag}-${APP_TAG:-1}'),
              m.firstVariable('image: app:1'),
            ]), (e) => done(['error ' + e]));
            """) as? [String]
        #expect(picked == ["APP_TAG", "SERVICE_TAG"], "\(String(describing: picked))")
        #expect(try await ui.text("[data-example=form] pre") == "<form method=\"post\" action=\"\(url)\"><button>Redeploy</button></form>")
        #expect(try await ui.text("[data-example=form-tag] pre") == "<form method=\"post\" action=\"\(url)?tag=v2\"><button>Deploy v2</button></form>")

        // A registry or CI system POSTs to the copied URL…
        var request = URLRequest(url: URL(string: clipboard ?? url)!.appending(queryItems: [.init(name: "tag", value: "v2.1")]))
        request.httpMethod = "POST"
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 202)
        let accepted = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let jobId = try #require((accepted?["job"] as? [String: Any])?["id"] as? String)

        // …and the Jobs page shows the job and follows it to its final state.
        try await ui.click("nav [data-nav=jobs]")
        let jobRow = "[data-job-id='\(jobId)']"
        try await ui.element(jobRow)
        try await ui.waitUntil("the job to succeed on the Jobs page", timeout: .seconds(30)) {
            try await ui.element(jobRow, displayed: false).attribute("data-state") == "succeeded"
        }
        let rowText = try await ui.text(jobRow)
        #expect(rowText.contains("shop") && rowText.contains("succeeded") && rowText.contains("webhook") && rowText.contains("tag=v2.1"))
        try await ui.screenshots("09-jobs")

        // The job page: trigger, parameters, timings, result and log.
        try await ui.click("\(jobRow) a.primary-link")
        try await ui.waitForText("#job-state", "succeeded") { $0 == "succeeded" }
        #expect(try await ui.text("#job-source") == "webhook")
        #expect(try await ui.text("#job-params").contains("tag=v2.1"))
        #expect(try await ui.text("#job-plan").contains("ghcr.io/acme/shop:v2.1"))
        try await ui.waitForText("#job-log", "the agent's log") { $0.contains("simulated deploy") }
        try await ui.waitForText("#log-live", "finished") { $0.hasPrefix("Finished") }
        #expect(try await ui.text("#job-duration") != "—")
        try await ui.screenshots("10-job-succeeded")

        // Rotate: a new URL; the old one answers 404.
        try await ui.open("/stacks/\(stackId)/edit")
        try await ui.click("#rotate-webhook")
        try await ui.click("dialog[open] [data-confirm=ok]")
        var rotated = url
        try await ui.waitUntil("a new URL") {
            rotated = try await ui.element("#webhook-url").property("value") as? String ?? url
            return rotated != url
        }
        #expect(try await post(url) == 404)

        // Switching it off asks first, then disables the webhook.
        try await ui.element("#webhook-toggle", displayed: false).click()
        try await ui.element("dialog[open]")
        #expect(try await ui.text("dialog[open] h2") == "Turn off the webhook?")
        try await ui.click("dialog[open] [data-confirm=ok]")
        try await ui.waitUntil("the webhook to be off") {
            try await ui.element("#webhooks", displayed: false).attribute("data-webhook") == "off"
        }
        #expect(try await ui.element("#webhook-toggle", displayed: false).property("checked") as? Bool == false)
        #expect(try await post(rotated) == 404)
        let (_, after) = try await ui.api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        let webhook = (after["stack"] as? [String: Any])?["webhook"]
        #expect(webhook == nil || webhook is NSNull, "the stack still has a webhook: \(String(describing: webhook))")
        #expect(try await ui.scriptErrors() == [])
    }

    @Test("Update on the Edit page says what a webhook changed while the page was open before it replaces it",
          .timeLimit(.minutes(3)))
    func editSeesWhatChangedWhileOpen() async throws {
        let ui = try ui
        let stackId = try await createStack(ui, name: "tagged", environmentId: ui.dockEnvironmentId,
                                            compose: "services:\n  api:\n    image: ghcr.io/acme/api:${API_TAG:-stable}\n",
                                            env: ["API_TAG": "v4"])
        func env() async throws -> [String: String]? {
            let (_, body) = try await ui.api.call("GET", "/api/stacks/\(stackId)", expect: 200)
            return (body["stack"] as? [String: Any])?["env"] as? [String: String]
        }
        try await ui.open("/stacks/\(stackId)/edit")
        try await ui.element("#update-stack")
        #expect(try await ui.element("#stack-health-timeout").property("value") as? String == "60")
        try await ui.type("#stack-health-timeout", "90")

        // While the page is open, CI deploys v5 through the webhook; its success sets API_TAG.
        let (_, hook) = try await ui.api.call("POST", "/api/stacks/\(stackId)/webhook", expect: 201)
        let url = try #require(hook["url"] as? String)
        var request = URLRequest(url: try #require(URL(string: url + "?API_TAG=v5&wait=30")))
        request.httpMethod = "POST"
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200, "the webhook's job ended")
        #expect(try await env() == ["API_TAG": "v5"])
        let (_, before) = try await ui.api.call("GET", "/api/jobs?stackId=\(stackId)", expect: 200)
        let jobCount = (before["jobs"] as? [Any])?.count

        // The form still says v4. The first click updates nothing and says what changed.
        try await ui.click("#update-stack")
        let warning = try await ui.waitForText("#stack-form-error", "the warning") { $0.contains("changed since") }
        #expect(warning.contains("API_TAG=v5"), "\(warning)")
        #expect(try await env() == ["API_TAG": "v5"], "nothing was replaced")
        let (_, after) = try await ui.api.call("GET", "/api/jobs?stackId=\(stackId)", expect: 200)
        #expect((after["jobs"] as? [Any])?.count == jobCount, "no job was queued")

        // A second click is the user's choice: the form's variables replace the stack's.
        try await ui.click("#update-stack")
        try await ui.waitUntil("the update to replace API_TAG") { try await env() == ["API_TAG": "v4"] }
        let (_, updated) = try await ui.api.call("GET", "/api/stacks/\(stackId)", expect: 200)
        #expect((updated["stack"] as? [String: Any])?["healthTimeout"] as? Int == 90, "and the form's health timeout")
        #expect(try await ui.text("#stack-form-error").isEmpty)
        #expect(try await ui.scriptErrors() == [])
    }

    @Test("The job page follows a running job's log live and stops when the job ends", .timeLimit(.minutes(2)))
    func jobLogFollowsLive() async throws {
        let ui = try ui
        // An agent whose jobs take a few seconds, so the job is seen running.
        let (_, created) = try await ui.api.call("POST", "/api/environments", json: ["name": "slow-1", "type": "agent"], expect: 201)
        let environmentId = try #require((created["environment"] as? [String: Any])?["id"] as? String)
        _ = try ui.startAgent(name: "slow-1", join: try #require(created["joinToken"] as? String), simulate: "5s")
        #expect(try await eventually(timeout: .seconds(30)) {
            let (_, body) = try await ui.api.call("GET", "/api/environments/\(environmentId)", expect: 200)
            return (body["environment"] as? [String: Any])?["status"] as? String == "connected"
        })
        let (_, stack) = try await ui.api.call("POST", "/api/stacks", json: [
            "name": "billing", "environmentId": environmentId,
            "compose": "services:\n  api:\n    image: ghcr.io/acme/billing:2.3\n  worker:\n    image: ghcr.io/acme/billing-worker:2.3\n",
        ], expect: 201)
        let jobId = try #require((stack["job"] as? [String: Any])?["id"] as? String)

        try await ui.open("/jobs/\(jobId)")
        try await ui.waitForText("#job-state", "running") { $0 == "running" }
        #expect(try await ui.element("#log-live").attribute("data-following") == "true")
        try await ui.waitForText("#job-log", "the agent's first line") { $0.contains("simulated deploy of billing") }
        #expect(try await ui.text("#job-summary").hasPrefix("Running"))
        try await ui.screenshots("10-job-running")

        try await ui.waitForText("#job-state", timeout: .seconds(30), "succeeded") { $0 == "succeeded" }
        try await ui.waitForText("#log-live", "finished") { $0.hasPrefix("Finished") }
        #expect(try await ui.element("#log-live").attribute("data-following") == "false")
        #expect(try await ui.text("#job-plan").contains("ghcr.io/acme/billing-worker:2.3"))
        #expect(try await ui.scriptErrors() == [])
    }

    @Test("On an edge environment the webhook toggle is disabled and shows the server's edge_environment message",
          .timeLimit(.minutes(2)))
    func edgeEnvironmentToggle() async throws {
        let ui = try ui
        let (_, created) = try await ui.api.call("POST", "/api/environments", json: ["name": "edge-shop", "type": "edge"], expect: 201)
        let environmentId = try #require((created["environment"] as? [String: Any])?["id"] as? String)
        let stackId = try await createStack(ui, name: "kiosk", environmentId: environmentId,
                                            compose: "services:\n  kiosk:\n    image: nginx:1.27\n", waitForJob: false)
        let (status, refusal) = try await ui.api.call("POST", "/api/stacks/\(stackId)/webhook")
        #expect(status == 409)
        let serverMessage = try #require((refusal["error"] as? [String: Any])?["message"] as? String)

        try await ui.open("/stacks/\(stackId)/edit")
        try await ui.waitUntil("the toggle to be disabled for edge") {
            try await ui.element("#webhooks", displayed: false).attribute("data-webhook") == "unavailable"
        }
        let toggle = try await ui.element("#webhook-toggle", displayed: false)
        #expect(try await toggle.isEnabled() == false)
        #expect(try await toggle.property("checked") as? Bool == false)
        #expect(try await ui.text("#webhook-disabled-reason .reason-text") == serverMessage)
        #expect(try await ui.browser.find("#webhook-url") == nil)
        try await ui.screenshots("11-edge-webhook-disabled", scrollTo: "#webhooks")

        try await ui.open("/stacks")
        try await ui.waitForText("[data-stack-name='kiosk'] .a-webhook", "n/a") { $0 == "n/a" }
        try await ui.screenshots("04-stacks")
        #expect(try await ui.scriptErrors() == [])
    }

    // MARK: - Looks

    @Test("Every page holds still while it loads, fits a 390 px phone without sideways scrolling, and shows keyboard focus",
          .timeLimit(.minutes(4)))
    func layoutAndFocus() async throws {
        let ui = try ui
        let stackId = try await createStack(ui, name: "layout", environmentId: ui.dockEnvironmentId,
                                            compose: "services:\n  app:\n    image: nginx:1.27\n")
        let (_, jobs) = try await ui.api.call("GET", "/api/jobs?stackId=\(stackId)&limit=1", expect: 200)
        let jobId = try #require(((jobs["jobs"] as? [[String: Any]])?.first)?["id"] as? String)
        let pages = ["/environments", "/stacks", "/jobs", "/stacks/\(stackId)", "/stacks/\(stackId)/edit", "/jobs/\(jobId)",
                     "/stacks/new", "/environments/new"]
        for viewport in Viewport.allCases {
            try await ui.setViewport(viewport)
            for page in pages {
                // Every API answer takes 300 ms, as over a real network, so the page is drawn before its data.
                try await ui.open(page)
                try await ui.browser.cdp("Network.enable")
                try await ui.browser.cdp("Network.emulateNetworkConditions",
                                         ["offline": false, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1])
                try await ui.browser.command("POST", "refresh")
                try await ui.browser.execute("""
                    window.__cls = 0;
                    new PerformanceObserver((list) => {
                      for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
                    }).observe({type: 'layout-shift', buffered: true});
                    """)
                // Let the first data arrive and a poll or two run.
                try await ui.waitUntil("\(page) to load its data") {
                    try await ui.script("return !document.querySelector('.skeleton') && !document.querySelector('[aria-busy=true]');", as: Bool.self) ?? false
                }
                try await Task.sleep(for: .milliseconds(600))
                try await ui.browser.cdp("Network.emulateNetworkConditions",
                                         ["offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1])
                let shift = number(try await ui.browser.execute("return window.__cls;")) ?? -1
                #expect(shift >= 0 && shift < 0.02, "\(page) at \(viewport): cumulative layout shift \(shift)")
                let overflow = try await ui.script("return document.documentElement.scrollWidth - window.innerWidth;", as: Int.self) ?? 0
                #expect(overflow <= 0, "\(page) at \(viewport) scrolls sideways by \(overflow) px")
            }
        }
        try await ui.setViewport(.desktop)

        // Keyboard focus is visible: Tab to the first control and look at its outline.
        try await ui.open("/stacks")
        try await ui.browser.execute("document.activeElement && document.activeElement.blur(); window.scrollTo(0,0);")
        try await ui.browser.pressKeys(Key.tab)
        try await ui.browser.pressKeys(Key.tab)
        let outline = try await ui.script("""
            const el = document.activeElement; const s = getComputedStyle(el);
            return [el.tagName, s.outlineStyle, s.outlineWidth, el.matches(':focus-visible')].join(' ');
            """, as: String.self) ?? ""
        #expect(outline.contains("solid") && outline.contains("2px") && outline.hasSuffix("true"), "focused element: \(outline)")
        try await ui.screenshots("12-keyboard-focus")
        #expect(try await ui.scriptErrors() == [])
    }

    // MARK: - Helpers

    /// Creates a stack through the API; waits for its first deploy to end unless told not to.
    private func createStack(_ ui: UIHarness, name: String, environmentId: String, compose: String,
                             env: [String: String] = [:], waitForJob: Bool = true) async throws -> String {
        let (_, body) = try await ui.api.call("POST", "/api/stacks",
                                               json: ["name": name, "environmentId": environmentId, "compose": compose, "env": env],
                                               expect: 201)
        let stackId = try #require((body["stack"] as? [String: Any])?["id"] as? String)
        let jobId = try #require((body["job"] as? [String: Any])?["id"] as? String)
        if waitForJob {
            let ended = try await eventually(timeout: .seconds(30)) {
                let (_, job) = try await ui.api.call("GET", "/api/jobs/\(jobId)", expect: 200)
                return (job["job"] as? [String: Any])?["state"] as? String == "succeeded"
            }
            #expect(ended, "the first deploy of \(name) did not succeed")
        }
        return stackId
    }

    /// A JSON number from a script, whichever way Foundation decoded it.
    private func number(_ value: Any?) -> Double? {
        switch value {
        case let value as Double: value
        case let value as Int: Double(value)
        case let value as NSNumber: value.doubleValue
        default: nil
        }
    }

    private func post(_ url: String) async throws -> Int {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }
}
