import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Testing
import WharfServer

/// `WebhookTrigger.parse`: the query string, form bodies, Docker Hub and registry payloads.
struct WebhookTriggerTests {
    private func parse(
        _ query: [(String, String)] = [],
        contentType: String? = nil,
        body: String = ""
    ) throws(APIError) -> WebhookTrigger {
        try WebhookTrigger.parse(query: query, contentType: contentType, body: Array(body.utf8))
    }

    private func expectError(
        _ code: String,
        _ query: [(String, String)] = [],
        contentType: String? = nil,
        body: String = "",
        messageContains: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let trigger = try self.parse(query, contentType: contentType, body: body)
            Issue.record("expected \(code), parsed \(trigger)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.status == .badRequest, sourceLocation: sourceLocation)
            #expect(error.code == code, sourceLocation: sourceLocation)
            if let messageContains {
                #expect(error.message.contains(messageContains), "message: \(error.message)", sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: Query string

    @Test func bareCallIsAPlainWebhook() throws {
        #expect(try self.parse() == WebhookTrigger(source: .webhook, pull: true))
    }

    @Test(arguments: [
        "latest", "1.2.3", "v2", "_", "a", "stable_2024-01.rc1", "A-b.C_d", "0", String(repeating: "x", count: 128),
    ])
    func validTags(_ tag: String) throws {
        #expect(WebhookTrigger.isValidTag(tag))
        #expect(try self.parse([("tag", tag)]).tag == tag)
    }

    @Test(arguments: [
        "", ".hidden", "-dash", "has space", "a/b", "a:b", "a@b", "ünïcode", "tag\n", String(repeating: "x", count: 129),
        "${TAG}", "v1;rm",
    ])
    func invalidTags(_ tag: String) {
        #expect(!WebhookTrigger.isValidTag(tag))
        self.expectError("invalid_tag", [("tag", tag)])
    }

    @Test(arguments: [
        ("false", false), ("FALSE", false), ("False", false), ("0", false),
        ("true", true), ("TRUE", true), ("1", true),
    ])
    func pullImage(_ value: String, pull: Bool) throws {
        #expect(try self.parse([("pullimage", value)]).pull == pull)
    }

    @Test(arguments: ["", "no", "yes", "2", "off", "f"])
    func invalidPullImage(_ value: String) {
        self.expectError("invalid_pullimage", [("pullimage", value)])
    }

    @Test(arguments: [("0", 0), ("1", 1), ("45", 45), ("300", 300), ("007", 7)])
    func wait(_ value: String, seconds: Int) throws {
        #expect(try self.parse([("wait", value)]).wait == seconds)
    }

    @Test(arguments: ["", "301", "1000", "-1", "+5", " 5", "5s", "1e2", "abc", "99999999999999999999"])
    func invalidWait(_ value: String) {
        self.expectError("invalid_wait", [("wait", value)])
    }

    @Test(arguments: ["SERVICE_TAG", "_", "_private", "a", "A1_b2", "TAG", "Tag", "PULLIMAGE", "Wait", "tag_"])
    func validVariableNames(_ name: String) throws {
        #expect(WebhookTrigger.isValidVariableName(name))
        let trigger = try self.parse([(name, "value")])
        #expect(trigger.variables == [name: "value"])
        #expect(trigger.tag == nil)
    }

    @Test(arguments: ["", "1ABC", "SERVICE-TAG", "a.b", "a b", "ÄPFEL", "$HOME", "a=b"])
    func invalidVariableNames(_ name: String) {
        #expect(!WebhookTrigger.isValidVariableName(name))
        self.expectError("invalid_variable", [(name, "x")], messageContains: "'\(name)'")
    }

    @Test(arguments: ["LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "COMPOSE_FILE", "COMPOSE_PROFILES", "DOCKER_HOST",
                      "DOCKER_API_VERSION", "PATH", "BUILDKIT_HOST", "GCONV_PATH"])
    func variablesThatWouldChangeHowComposeRunsAreRefused(_ name: String) {
        self.expectError("invalid_variable", [(name, "x")], messageContains: "is reserved")
    }

    @Test(arguments: ["DOCKER_REGISTRY", "COMPOSE", "LD", "HOME", "path", "MY_LD_PRELOAD", "ld_preload"])
    func namesThatOnlyLookLikeReservedOnesAreVariables(_ name: String) throws {
        #expect(try self.parse([(name, "x")]).variables == [name: "x"])
    }

    @Test func variableValuesAreKeptAsGivenButNoNUL() throws {
        let trigger = try self.parse([("MSG", "hello world: ${X} & \"quotes\"\nnext"), ("EMPTY", "")])
        #expect(trigger.variables == ["MSG": "hello world: ${X} & \"quotes\"\nnext", "EMPTY": ""])
        self.expectError("invalid_variable", [("BAD", "a\u{0}b")], messageContains: "BAD")
    }

    @Test func portainerStyleCall() throws {
        let trigger = try self.parse([("SERVICE_TAG", "development"), ("pullimage", "false"), ("tag", "v1.4")])
        #expect(trigger == WebhookTrigger(source: .webhook, tag: "v1.4", pull: false, variables: ["SERVICE_TAG": "development"]))
    }

    @Test func repeatedKeysLastWinsAndOnlyTheLastIsChecked() throws {
        let trigger = try self.parse([
            ("tag", "not valid!"), ("tag", "v2"), ("X", "1"), ("X", "2"), ("wait", "999"), ("wait", "5"),
        ])
        #expect(trigger.tag == "v2")
        #expect(trigger.variables == ["X": "2"])
        #expect(trigger.wait == 5)
        self.expectError("invalid_tag", [("tag", "v2"), ("tag", "not valid!")])
    }

    @Test func decodeQueryFollowsFormEncoding() throws {
        let pairs = try WebhookTrigger.decodeQuery("tag=v1&MSG=a+b%20c%2B&EMPTY=&FLAG&&X=%C3%A9=")
        #expect(pairs.map(\.0) == ["tag", "MSG", "EMPTY", "FLAG", "X"])
        #expect(pairs.map(\.1) == ["v1", "a b c+", "", "", "é="])
        #expect(try WebhookTrigger.decodeQuery(nil).isEmpty)
        #expect(try WebhookTrigger.decodeQuery("").isEmpty)
        #expect(throws: APIError.self) { try WebhookTrigger.decodeQuery("X=%zz") }
        do {
            _ = try WebhookTrigger.decodeQuery("X=%E9")
            Issue.record("Latin-1 bytes must not pass as UTF-8")
        } catch {
            #expect(error.code == "invalid_query")
        }
    }

    // MARK: Bodies and content types

    @Test(arguments: [nil, "application/json", "application/x-www-form-urlencoded", "text/plain", "application/octet-stream"])
    func emptyOrBlankBodyIsAPlainWebhook(_ contentType: String?) throws {
        #expect(try self.parse(contentType: contentType, body: "").source == .webhook)
        #expect(try self.parse(contentType: contentType, body: " \r\n\t").source == .webhook)
    }

    @Test func formBodyFieldsActLikeQueryParameters() throws {
        let trigger = try self.parse(
            contentType: "application/x-www-form-urlencoded",
            body: "tag=v3&SERVICE_TAG=development&NOTE=hello+world%21&pullimage=0&wait=30"
        )
        #expect(
            trigger
                == WebhookTrigger(
                    source: .webhook, tag: "v3", pull: false, wait: 30,
                    variables: ["SERVICE_TAG": "development", "NOTE": "hello world!"]
                )
        )
    }

    @Test func queryWinsOverForm() throws {
        let trigger = try self.parse(
            [("tag", "from-query"), ("X", "query")],
            contentType: "application/x-www-form-urlencoded; charset=UTF-8",
            body: "tag=from-form&X=form&Y=form"
        )
        #expect(trigger.tag == "from-query")
        #expect(trigger.variables == ["X": "query", "Y": "form"])
    }

    @Test func formFieldsAreValidatedLikeTheQuery() {
        let form = "application/x-www-form-urlencoded"
        self.expectError("invalid_tag", contentType: form, body: "tag=bad%20tag")
        self.expectError("invalid_variable", contentType: form, body: "bad-name=1")
        self.expectError("invalid_wait", contentType: form, body: "wait=forever")
        self.expectError("invalid_payload", contentType: form, body: "X=%E9")
        self.expectError("invalid_payload", contentType: form, body: "X=100%")
    }

    @Test(arguments: [
        ("multipart/form-data; boundary=----x", "------x--"),
        ("application/xml", "<push/>"),
        ("application/octet-stream", "\u{1}\u{2}"),
        ("text/plain", "tag=v1"),
    ])
    func unsupportedContentTypes(_ contentType: String, body: String) {
        self.expectError("invalid_payload", contentType: contentType, body: body)
    }

    @Test func nonJSONBodyWithoutContentTypeIsRefused() {
        self.expectError("invalid_payload", contentType: nil, body: "tag=v1")
    }

    @Test(arguments: [
        ("application/json", "{\"push_data\": "),
        ("application/json", "[1, 2]"),
        ("application/json", "\"text\""),
        ("application/json", "{\"hello\": \"world\"}"),
        ("application/json", "{\"push_data\": {\"tag\": \"v1\"}}"),
        ("application/json", "{\"push_data\": {}, \"repository\": {\"repo_name\": \"a/b\"}}"),
        ("application/json", "{\"push_data\": {\"tag\": \"v1\"}, \"repository\": {\"repo_name\": \"Not/Valid\"}}"),
        ("application/json", "{\"events\": {}}"),
        ("application/json", "{\"events\": [42]}"),
        (WebhookFixtures.registryContentType, "{\"hello\": 1}"),
        (WebhookFixtures.registryContentType, "not json"),
        (WebhookFixtures.registryContentType, #"{"events": [{"action": "push", "target": {"tag": "v1"}}]}"#),
        (WebhookFixtures.registryContentType,
         #"{"events": [{"action": "push", "target": {"tag": "v1", "repository": "UPPER/case"}}]}"#),
    ])
    func malformedPayloads(_ contentType: String, body: String) {
        self.expectError("invalid_payload", contentType: contentType, body: body)
    }

    // MARK: Docker Hub

    @Test func dockerHubPush() throws {
        let trigger = try self.parse(contentType: "application/json", body: WebhookFixtures.dockerHubPush)
        let target = ImageTarget(repository: RepositoryHint(host: "docker.io", path: "acme/shop-web"), tag: "v2.4.1")
        #expect(trigger == WebhookTrigger(source: .dockerhub, targets: [target]))
        #expect(target.description == "docker.io/acme/shop-web:v2.4.1")
    }

    @Test func dockerHubQueryTagWinsAndVariablesStillApply() throws {
        let trigger = try self.parse(
            [("tag", "stable"), ("pullimage", "true"), ("ENV", "prod")],
            contentType: "application/json; charset=utf-8",
            body: WebhookFixtures.dockerHubPush
        )
        #expect(trigger.source == .dockerhub)
        #expect(trigger.tag == "stable")
        #expect(trigger.targets.map(\.description) == ["docker.io/acme/shop-web:stable"])
        #expect(trigger.variables == ["ENV": "prod"])
    }

    @Test func dockerHubOfficialImageIsUnderLibrary() throws {
        let trigger = try self.parse(contentType: "application/json", body: WebhookFixtures.dockerHubOfficialPush)
        #expect(trigger.targets.map(\.description) == ["docker.io/library/nginx:1.27-alpine"])
    }

    @Test func dockerHubPayloadWithoutContentTypeIsRecognised() throws {
        #expect(try self.parse(contentType: nil, body: WebhookFixtures.dockerHubPush).source == .dockerhub)
        #expect(try self.parse(contentType: "text/plain", body: WebhookFixtures.dockerHubPush).source == .dockerhub)
    }

    @Test func dockerHubInvalidTagIsRefused() {
        let body = #"{"push_data": {"tag": "bad tag"}, "repository": {"repo_name": "acme/app"}}"#
        self.expectError("invalid_tag", contentType: "application/json", body: body)
    }

    // MARK: Registry notifications

    @Test func registryManifestPushByTag() throws {
        let trigger = try WebhookTrigger.parse(
            query: [],
            contentType: WebhookFixtures.registryContentType,
            body: Array(WebhookFixtures.registryManifestPushByTag.utf8),
            userAgent: WebhookFixtures.registryUserAgent
        )
        let target = ImageTarget(repository: RepositoryHint(host: "127.0.0.1:58321", path: "demo/web"), tag: "1.2.3")
        #expect(
            trigger
                == WebhookTrigger(
                    source: .registry, targets: [target], eventIds: ["2e8928ae-2afe-40b8-b628-89fdca507a67"],
                    registryEvents: [RegistryEvent(id: "2e8928ae-2afe-40b8-b628-89fdca507a67", target: target)]
                )
        )
    }

    @Test(arguments: [
        ("blob push", WebhookFixtures.registryBlobPush),
        ("manifest pull", WebhookFixtures.registryManifestPull),
        ("push by digest", WebhookFixtures.registryManifestPushByDigest),
        ("no events", #"{"events": []}"#),
    ])
    func registryEnvelopesWithoutPushByTagAreIgnored(_ name: String, body: String) throws {
        let trigger = try self.parse(contentType: WebhookFixtures.registryContentType, body: body)
        #expect(trigger.source == .registry)
        #expect(trigger.targets.isEmpty)
        #expect(trigger.eventIds.isEmpty)
        let reason = try #require(trigger.ignored)
        #expect(reason.contains(name == "no events" ? "no events" : "no push-by-tag event"))
    }

    @Test func registryEnvelopeWithSeveralEventsKeepsEveryPushByTagInOrder() throws {
        let trigger = try self.parse(
            contentType: "application/vnd.docker.distribution.events.v2+json",
            body: WebhookFixtures.registryMixedEnvelope
        )
        #expect(trigger.source == .registry)
        #expect(trigger.ignored == nil)
        #expect(
            trigger.targets.map(\.description) == [
                "127.0.0.1:58321/demo/web:1.2.3", "127.0.0.1:58321/demo/api:2.0.0", "127.0.0.1:58321/demo/web:1.2.4",
            ]
        )
        #expect(
            trigger.eventIds == [
                "2e8928ae-2afe-40b8-b628-89fdca507a67", "6b0d7a4e-91c2-4f57-a3d8-2f1e9c0b7d55",
                "f4a3c2d1-0b9e-4c8d-9f7a-6e5d4c3b2a19",
            ]
        )
    }

    @Test func registryEnvelopeSentAsPlainJSONIsRecognised() throws {
        let trigger = try self.parse(contentType: "application/json", body: WebhookFixtures.registryManifestPushByTag)
        #expect(trigger.source == .registry)
        #expect(trigger.targets.count == 1)
    }

    @Test func registryQueryTagReplacesEventTagsAndMergesDuplicates() throws {
        let trigger = try self.parse(
            [("tag", "pinned")],
            contentType: WebhookFixtures.registryContentType,
            body: WebhookFixtures.registryMixedEnvelope
        )
        #expect(trigger.targets.map(\.description) == ["127.0.0.1:58321/demo/api:pinned", "127.0.0.1:58321/demo/web:pinned"])
    }

    @Test func registryHostFallsBackToTargetURL() throws {
        let body = #"""
            {"events": [{"id": "e1", "action": "push",
              "target": {"repository": "team/app", "tag": "v9",
                         "url": "https://Registry.Example.com:5443/v2/team/app/manifests/sha256:00"}}]}
            """#
        let trigger = try self.parse(contentType: WebhookFixtures.registryContentType, body: body)
        #expect(trigger.targets.map(\.description) == ["registry.example.com:5443/team/app:v9"])
        #expect(trigger.eventIds == ["e1"])
    }

    @Test func registryEventWithoutAnyHostMatchesAnyRegistry() throws {
        let body = #"{"events": [{"action": "push", "target": {"repository": "team/app", "tag": "v9"}}]}"#
        let trigger = try self.parse(contentType: WebhookFixtures.registryContentType, body: body)
        #expect(trigger.targets == [ImageTarget(repository: RepositoryHint(host: nil, path: "team/app"), tag: "v9")])
        #expect(trigger.eventIds.isEmpty)
    }
}

/// `RepositoryHint.matches(image:)`: which services a payload's repository names.
struct RepositoryHintTests {
    @Test(arguments: [
        // host, path, image, matches
        ("127.0.0.1:5000", "demo/web", "127.0.0.1:5000/demo/web:1.0", true),
        ("127.0.0.1:5000", "demo/web", "127.0.0.1:5000/demo/web", true),
        ("127.0.0.1:5000", "demo/web", "localhost:5000/demo/web:latest", true),
        ("127.0.0.1:5000", "demo/web", "[::1]:5000/demo/web@sha256:abcd", true),
        ("127.0.0.1:5000", "demo/web", "localhost:5001/demo/web", false),
        ("127.0.0.1:5000", "demo/web", "127.0.0.1:5000/demo/api", false),
        ("127.0.0.1:5000", "demo/web", "127.0.0.1:5000/demo/web-extra", false),
        ("127.0.0.1:5000", "demo/web", "demo/web", false),
        ("registry.example.com", "team/app", "REGISTRY.example.com/team/app:v1", true),
        ("docker.io", "acme/shop-web", "acme/shop-web:v2", true),
        ("docker.io", "acme/shop-web", "docker.io/acme/shop-web", true),
        ("docker.io", "acme/shop-web", "index.docker.io/acme/shop-web:latest", true),
        ("docker.io", "acme/shop-web", "ghcr.io/acme/shop-web", false),
        ("docker.io", "library/nginx", "nginx", true),
        ("docker.io", "library/nginx", "nginx:1.27-alpine", true),
        ("docker.io", "library/nginx", "library/nginx", true),
        ("docker.io", "library/nginx", "docker.io/nginx", true),
        ("docker.io", "library/nginx", "acme/nginx", false),
        (nil, "team/app", "anything.example:1234/team/app:v1", true),
        (nil, "team/app", "team/app", true),  // no host: any registry, Docker Hub included
        (nil, "library/redis", "redis:7", true),
    ] as [(String?, String, String, Bool)])
    func matches(host: String?, path: String, image: String, expected: Bool) {
        #expect(RepositoryHint(host: host, path: path).matches(image: image) == expected)
    }

    @Test func hostIsCanonical() {
        #expect(RepositoryHint(host: "Index.Docker.IO", path: "a/b").host == "docker.io")
        #expect(RepositoryHint(host: "Registry.Example.com:5000", path: "a/b").description == "registry.example.com:5000/a/b")
    }

    @Test(arguments: [
        ("a/b", true), ("demo/web", true), ("a.b_c__d-e---f/g", true), ("library/nginx", true), ("x", true),
        ("A/b", false), ("a//b", false), ("/a", false), ("a/", false), ("a_/b", false), ("a.-b", false),
        ("a___b", false), ("a..b", false), ("-a", false), ("a b", false), ("", false),
    ])
    func registryRepositoryPaths(path: String, valid: Bool) throws {
        let body = #"{"events": [{"action": "push", "target": {"repository": "\#(path)", "tag": "v1"}}]}"#
        let result = Result { () throws(APIError) in
            try WebhookTrigger.parse(query: [], contentType: WebhookFixtures.registryContentType, body: Array(body.utf8))
        }
        switch result {
        case .success(let trigger):
            #expect(valid, "\(path) was accepted")
            #expect(trigger.targets.first?.repository.path == path)
        case .failure(let error):
            #expect(!valid, "\(path) was refused: \(error)")
            #expect(error.code == "invalid_payload")
        }
    }
}

/// `FormURLEncoding`: HTML form bodies as browsers encode them.
struct FormURLEncodingTests {
    @Test(arguments: [
        ("", [] as [String]),
        ("a=1", ["a=1"]),
        ("a=1&b=2", ["a=1", "b=2"]),
        ("a=&b", ["a=", "b="]),
        ("&&a=1&&", ["a=1"]),
        ("a=x%3Dy%26z", ["a=x=y&z"]),
        ("a+b=c+d", ["a b=c d"]),
        ("k=%E2%9C%93", ["k=✓"]),
        ("k=a=b", ["k=a=b"]),
        ("a=1&a=2", ["a=1", "a=2"]),
        ("k=%41%62", ["k=Ab"]),
    ])
    func decodes(_ text: String, pairs: [String]) throws {
        let decoded = try FormURLEncoding.decode(text)
        #expect(decoded.map { "\($0.name)=\($0.value)" } == pairs)
    }

    @Test(arguments: ["a=%", "a=%4", "a=%G1", "%=1", "a=%%41"])
    func badEscapes(_ text: String) {
        #expect(throws: FormURLEncoding.DecodingError.self) { try FormURLEncoding.decode(text) }
    }

    @Test func notUTF8() {
        #expect(throws: FormURLEncoding.DecodingError.notUTF8(near: "a=%FF")) { try FormURLEncoding.decode("a=%FF") }
    }
}

/// The webhook route of a small app: what a browser, Docker Hub or a registry gets back.
@Suite(.timeLimit(.minutes(1)))
struct WebhookRouteTests {
    let uri = "/api/stacks/webhooks/\(EdgeTestApp.webhookToken)"

    private func post(
        _ uri: String,
        headers: HTTPFields = [:],
        body: String? = nil,
        check: @escaping @Sendable (TestResponse) async throws -> Void
    ) async throws {
        let app = EdgeTestApp.makeApplication(logger: EdgeLogCapture().logger())
        try await app.test(.router) { client in
            try await client.execute(uri: uri, method: .post, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
                try await check($0)
            }
        }
    }

    private func summary(_ response: TestResponse) throws -> WebhookTriggerSummary {
        #expect(response.status == .accepted)
        return try JSONDecoder().decode(WebhookTriggerSummary.self, from: Data(response.body.readableBytesView))
    }

    /// Headers as Chromium sends them for `<form method="post" action="…">`.
    static let browserFormHeaders: HTTPFields = [
        .contentType: "application/x-www-form-urlencoded",
        .origin: "null",
        .userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        .accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        HTTPField.Name("Upgrade-Insecure-Requests")!: "1",
    ]

    @Test func browserFormWithoutInputs() async throws {
        try await self.post(self.uri, headers: Self.browserFormHeaders, body: "") { response in
            let summary = try self.summary(response)
            #expect(summary.source == "webhook")
            #expect(summary.variables.isEmpty)
            #expect(summary.pull)
        }
    }

    @Test func browserFormWithInputs() async throws {
        // <input name="SERVICE_TAG" value="development"> <input name="NOTE" value="hi there & more!">
        try await self.post(
            self.uri + "?pullimage=false",
            headers: Self.browserFormHeaders,
            body: "SERVICE_TAG=development&NOTE=hi+there+%26+more%21"
        ) { response in
            let summary = try self.summary(response)
            #expect(summary.source == "webhook")
            #expect(summary.variables == ["SERVICE_TAG": "development", "NOTE": "hi there & more!"])
            #expect(summary.pull == false)
        }
    }

    @Test func noBodyWithQuery() async throws {
        try await self.post(self.uri + "?tag=v1.2&SERVICE_TAG=development&wait=30") { response in
            let summary = try self.summary(response)
            #expect(summary.tag == "v1.2")
            #expect(summary.wait == 30)
            #expect(summary.variables == ["SERVICE_TAG": "development"])
        }
    }

    @Test(arguments: [
        ("?tag=bad%20tag", "invalid_tag"),
        ("?wait=301", "invalid_wait"),
        ("?pullimage=maybe", "invalid_pullimage"),
        ("?SERVICE-TAG=x", "invalid_variable"),
        ("?X=%zz", "invalid_query"),
    ])
    func badQueryIs400(_ query: String, code: String) async throws {
        try await self.post(self.uri + query) { response in
            #expect(response.status == .badRequest)
            let errorCode = try APIErrorBody.decode(response.body).error.code
            #expect(errorCode == code)
        }
    }

    @Test func malformedJSONIs400() async throws {
        try await self.post(self.uri, headers: [.contentType: "application/json"], body: "{\"push_data\":") { response in
            #expect(response.status == .badRequest)
            let errorCode = try APIErrorBody.decode(response.body).error.code
            #expect(errorCode == "invalid_payload")
        }
    }

    @Test(arguments: [
        "/api/stacks/webhooks/00000000-0000-4000-8000-000000000000",
        "/api/stacks/webhooks/not-a-token",
        "/api/stacks/webhooks/8F14E45F-CEEA-467A-9AF3-8A4D1E2B3C4DX",
        "/api/stacks/webhooks/%2e%2e",
    ])
    func unknownTokensAllLookTheSame(_ uri: String) async throws {
        try await self.post(uri) { response in
            #expect(response.status == .notFound)
            let errorBody = try APIErrorBody.decode(response.body)
            #expect(errorBody == APIErrorBody(error: .init(code: "not_found", message: "Not found.")))
        }
    }

    @Test func uppercaseTokenIsTheSameToken() async throws {
        try await self.post("/api/stacks/webhooks/\(EdgeTestApp.webhookToken.uppercased())") { response in
            #expect(response.status == .accepted)
        }
    }

    @Test func dockerHubPush() async throws {
        try await self.post(self.uri, headers: [.contentType: "application/json"], body: WebhookFixtures.dockerHubPush) {
            response in
            let summary = try self.summary(response)
            #expect(summary.source == "dockerhub")
            #expect(summary.targets == ["docker.io/acme/shop-web:v2.4.1"])
        }
    }

    @Test func registryPushByTag() async throws {
        try await self.post(
            self.uri,
            headers: [.contentType: WebhookFixtures.registryContentType, .userAgent: WebhookFixtures.registryUserAgent],
            body: WebhookFixtures.registryManifestPushByTag
        ) { response in
            let summary = try self.summary(response)
            #expect(summary.source == "registry")
            #expect(summary.targets == ["127.0.0.1:58321/demo/web:1.2.3"])
            #expect(summary.eventIds == ["2e8928ae-2afe-40b8-b628-89fdca507a67"])
        }
    }

    @Test(arguments: [
        WebhookFixtures.registryBlobPush, WebhookFixtures.registryManifestPull, WebhookFixtures.registryManifestPushByDigest,
    ])
    func registryEventsToIgnoreAre200(_ body: String) async throws {
        try await self.post(self.uri, headers: [.contentType: WebhookFixtures.registryContentType], body: body) {
            response in
            #expect(response.status == .ok)
            let ignored = try JSONDecoder().decode(WebhookIgnoredBody.self, from: Data(response.body.readableBytesView))
            #expect(ignored.ignored.contains("no push-by-tag event"))
        }
    }
}
