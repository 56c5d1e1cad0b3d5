import Foundation
import Testing
import WharfProtocol
import WharfServer

struct ComposeFileTests {
    static let stack = """
        services:
          web:
            image: 127.0.0.1:5000/demo/web:${SERVICE_TAG:-stable}
            command: ["sh", "-c", "echo $$HOME && sleep 1"]
            environment:
              GREETING: hello ${WHO:-world}
          cache:
            image: redis:7
        """

    // MARK: Resolution

    @Test func usesTheDefaultTagWithoutServiceTag() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: [:])
        #expect(resolved.services.map(\.name) == ["cache", "web"])
        #expect(resolved.services.map(\.image) == ["redis:7", "127.0.0.1:5000/demo/web:stable"])
        #expect(resolved.yaml.contains("image: 127.0.0.1:5000/demo/web:stable\n"))
        #expect(!resolved.yaml.contains("SERVICE_TAG"))
        #expect(resolved.unsetVariables.isEmpty)
    }

    @Test func usesServiceTagWhenSet() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: ["SERVICE_TAG": "development", "WHO": "wharf"])
        let web = try #require(resolved.services.first { $0.name == "web" })
        #expect(web.image == "127.0.0.1:5000/demo/web:development")
        #expect(web.reference.domain == "127.0.0.1:5000")
        #expect(web.reference.path == "demo/web")
        #expect(web.reference.tag == "development")
        #expect(resolved.yaml.contains("GREETING: hello wharf"))
    }

    @Test func emptyServiceTagFallsBackToTheDefault() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: ["SERVICE_TAG": ""])
        #expect(resolved.services.last?.image == "127.0.0.1:5000/demo/web:stable")
    }

    @Test func escapedDollarIsALiteralDollarThatComposeReadsBackUnchanged() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: ["HOME": "/should/not/appear"])
        // As `docker compose config` prints it: the literal `$` is written `$$` …
        #expect(resolved.yaml.contains("echo $$HOME && sleep 1"))
        #expect(!resolved.yaml.contains("/should/not/appear"))
        // … so compose, interpolating the output again, sees the literal `$HOME`.
        #expect(try Interpolation.interpolate("echo $$HOME && sleep 1", environment: ["HOME": "/root"]) == "echo $HOME && sleep 1")
        // Resolving the output again changes nothing.
        #expect(try ComposeFile.resolve(resolved.yaml, environment: ["HOME": "/root"]) == resolved)
    }

    @Test func keysAreNotInterpolated() throws {
        let resolved = try ComposeFile.resolve(
            """
            services:
              web:
                image: nginx
                labels:
                  ${KEY}: ${VALUE}
            """,
            environment: ["KEY": "k", "VALUE": "v"]
        )
        #expect(resolved.yaml.contains("${KEY}: v"))
    }

    @Test func interpolatedValuesStayStrings() throws {
        let resolved = try ComposeFile.resolve(
            """
            services:
              web:
                image: nginx
                environment:
                  PORT: ${PORT:-8080}
                  DEBUG: ${DEBUG:-true}
                  EMPTY: ${UNSET}
                  QUOTED: '${PORT:-8080}'
                  PLAIN: 9000
            """,
            environment: [:]
        )
        #expect(resolved.yaml.contains(#"PORT: "8080""#))
        #expect(resolved.yaml.contains(#"DEBUG: "true""#))
        #expect(resolved.yaml.contains(#"EMPTY: """#))
        #expect(resolved.yaml.contains("QUOTED: '8080'"))
        #expect(resolved.yaml.contains("PLAIN: 9000"))
        #expect(resolved.unsetVariables == ["UNSET"])
    }

    @Test func expandsAnchorsAndMergeKeys() throws {
        let resolved = try ComposeFile.resolve(
            """
            x-defaults: &defaults
              image: 127.0.0.1:5000/demo/base:${TAG:-1}
              restart: unless-stopped
            services:
              api:
                <<: *defaults
                restart: always
              worker:
                <<: *defaults
            """,
            environment: ["TAG": "2"]
        )
        #expect(resolved.services.map(\.image) == ["127.0.0.1:5000/demo/base:2", "127.0.0.1:5000/demo/base:2"])
        // Merged keys take the place of `<<`; explicit keys win; anchors are gone.
        #expect(
            resolved.yaml == """
                x-defaults:
                  image: 127.0.0.1:5000/demo/base:2
                  restart: unless-stopped
                services:
                  api:
                    image: 127.0.0.1:5000/demo/base:2
                    restart: always
                  worker:
                    image: 127.0.0.1:5000/demo/base:2
                    restart: unless-stopped

                """
        )
    }

    @Test func mergeListPrefersTheFirstMapping() throws {
        let resolved = try ComposeFile.resolve(
            """
            x-a: &a {image: first, restart: always}
            x-b: &b {image: second, init: true}
            services:
              web:
                <<: [*a, *b]
            """,
            environment: [:]
        )
        #expect(resolved.services.map(\.image) == ["first"])
        #expect(resolved.yaml.contains("  web:\n    image: first\n    restart: always\n    init: true\n"))
    }

    @Test func listsServicesSortedByName() throws {
        let resolved = try ComposeFile.resolve(
            "services:\n  zeta: {image: a}\n  alpha: {image: b}\n  mid: {image: c}\n",
            environment: [:]
        )
        #expect(resolved.services.map(\.name) == ["alpha", "mid", "zeta"])
        // The document keeps its own order.
        let zeta = try #require(resolved.yaml.range(of: "zeta"))
        let alpha = try #require(resolved.yaml.range(of: "alpha"))
        #expect(zeta.lowerBound < alpha.lowerBound)
    }

    @Test func servicesEncodeAsNameAndImage() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: [:])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = String(decoding: try encoder.encode(resolved.services), as: UTF8.self)
        #expect(json == #"[{"image":"redis:7","name":"cache"},{"image":"127.0.0.1:5000/demo/web:stable","name":"web"}]"#)
        #expect(try JSONDecoder().decode([ResolvedService].self, from: Data(json.utf8)) == resolved.services)
    }

    // MARK: Validation errors

    struct Invalid: Sendable, CustomTestStringConvertible {
        let name: String
        let yaml: String
        let environment: [String: String]
        let code: ComposeError.Code
        /// Texts the message must contain: the problem and the place.
        let mentions: [String]
        var path: String? = nil
        var line: Int? = nil

        var testDescription: String { name }
    }

    static let invalidFiles: [Invalid] = [
        Invalid(name: "empty file", yaml: "", environment: [:], code: .invalidCompose, mentions: ["empty", "services"]),
        Invalid(name: "comments only", yaml: "# nothing\n", environment: [:], code: .invalidCompose, mentions: ["empty"]),
        Invalid(
            name: "top-level list",
            yaml: "- web\n- db\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["mapping at the top level", "a list"]
        ),
        Invalid(
            name: "top-level scalar",
            yaml: "hello",
            environment: [:],
            code: .invalidCompose,
            mentions: ["mapping at the top level", "\"hello\""]
        ),
        Invalid(
            name: "no services",
            yaml: "volumes:\n  data: {}\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["no `services`"]
        ),
        Invalid(
            name: "null services",
            yaml: "services:\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services:", "no services"],
            path: "services",
            line: 1
        ),
        Invalid(
            name: "empty services",
            yaml: "services: {}\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["no services"],
            path: "services"
        ),
        Invalid(
            name: "services as a list",
            yaml: "services:\n  - web\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services:", "must be a mapping", "a list"],
            path: "services",
            line: 2
        ),
        Invalid(
            name: "service as a string",
            yaml: "services:\n  web: nginx\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services.web", "service \"web\" must be a mapping", "\"nginx\""],
            path: "services.web",
            line: 2
        ),
        Invalid(
            name: "build-only service",
            yaml: "services:\n  ok:\n    image: nginx\n  web:\n    build: .\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services.web", "service \"web\" has no image", "image is required", "build"],
            path: "services.web",
            line: 4
        ),
        Invalid(
            name: "empty service",
            yaml: "services:\n  web:\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["service \"web\" has no image"],
            path: "services.web"
        ),
        Invalid(
            name: "null image",
            yaml: "services:\n  web:\n    image: ~\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["service \"web\" has no image"]
        ),
        Invalid(
            name: "image as a mapping",
            yaml: "services:\n  web:\n    image: {name: nginx}\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services.web.image", "must be a string", "a mapping"],
            path: "services.web.image",
            line: 3
        ),
        Invalid(
            name: "bad service name",
            yaml: "services:\n  my web:\n    image: nginx\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["\"my web\"", "invalid"],
            line: 2
        ),
        Invalid(
            name: "YAML syntax error",
            yaml: "services:\n  web:\n    image: nginx\n   bad: [\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["invalid YAML at line 4"],
            line: 4
        ),
        Invalid(
            name: "tab indentation",
            yaml: "services:\n\tweb:\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["invalid YAML at line 2, column 1"],
            line: 2
        ),
        Invalid(
            name: "duplicate key",
            yaml: "services:\n  web:\n    image: a\n  web:\n    image: b\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["\"web\"", "more than once"]
        ),
        Invalid(
            name: "two documents",
            yaml: "services:\n  web:\n    image: a\n---\nservices: {}\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["invalid YAML at line 4", "one YAML document"],
            line: 4
        ),
        Invalid(
            name: "undefined alias",
            yaml: "services:\n  web: *nothing\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["invalid YAML at line 2", "undefined alias"]
        ),
        Invalid(
            name: "bad merge",
            yaml: "services:\n  web:\n    <<: nginx\n    image: a\n",
            environment: [:],
            code: .invalidCompose,
            mentions: ["services.web.<<", "merge key"]
        ),
        Invalid(
            name: "required variable",
            yaml: "services:\n  web:\n    image: web:${SERVICE_TAG:?set the tag}\n",
            environment: [:],
            code: .missingVariable,
            mentions: ["services.web.image: required variable SERVICE_TAG is missing a value: set the tag"],
            path: "services.web.image",
            line: 3
        ),
        Invalid(
            name: "invalid template",
            yaml: "services:\n  web:\n    image: nginx\n    command: [\"echo\", \"${oops\"]\n",
            environment: [:],
            code: .invalidTemplate,
            mentions: ["services.web.command[1]: invalid interpolation format \"${oops\"", "$$"],
            path: "services.web.command[1]",
            line: 4
        ),
        Invalid(
            name: "template outside services",
            yaml: "services:\n  web:\n    image: nginx\nx-note: ${ bad }\n",
            environment: [:],
            code: .invalidTemplate,
            mentions: ["x-note:", "\"${ bad }\""],
            path: "x-note"
        ),
        Invalid(
            name: "invalid image after interpolation",
            yaml: "services:\n  web:\n    image: ${IMAGE}\n",
            environment: ["IMAGE": "Demo/Web:1"],
            code: .invalidImage,
            mentions: ["services.web.image", "service \"web\" has an invalid image", "must be lowercase"],
            path: "services.web.image",
            line: 3
        ),
        Invalid(
            name: "empty image after interpolation",
            yaml: "services:\n  web:\n    image: ${IMAGE}\n",
            environment: [:],
            code: .invalidImage,
            mentions: ["services.web.image", "service \"web\" has an empty image"]
        ),
        Invalid(
            name: "invalid tag",
            yaml: "services:\n  web:\n    image: web:${TAG}\n",
            environment: ["TAG": "-bad"],
            code: .invalidImage,
            mentions: ["service \"web\"", "tag \"-bad\""]
        ),
    ]

    @Test(arguments: invalidFiles)
    func rejects(_ invalid: Invalid) {
        let error = #expect(throws: ComposeError.self) {
            try ComposeFile.resolve(invalid.yaml, environment: invalid.environment)
        }
        #expect(error?.code == invalid.code)
        for text in invalid.mentions {
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "no error") should mention \(text)")
        }
        if let path = invalid.path { #expect(error?.path == path) }
        if let line = invalid.line { #expect(error?.line == line) }
    }

    @Test func missingVariableCarriesItsCause() throws {
        let error = #expect(throws: ComposeError.self) {
            try ComposeFile.resolve("services:\n  web:\n    image: web:${SERVICE_TAG:?}\n", environment: [:])
        }
        let cause = try #require(error?.cause as? InterpolationError)
        #expect(cause.variable == "SERVICE_TAG")
        #expect(error?.message == "services.web.image: required variable SERVICE_TAG is missing a value")
    }

    // MARK: Tag targeting

    static let targets = """
        services:
          web:
            image: 127.0.0.1:5000/demo/web:stable
          worker:
            image: 127.0.0.1:5000/demo/web@sha256:\(String(repeating: "ab", count: 32))
          api:
            image: 127.0.0.1:5000/demo/api:1.0
          cache:
            image: redis:7
        """

    func images(_ services: [ResolvedService]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: services.map { ($0.name, $0.image) })
    }

    @Test func tagWithoutRepositoryRetagsEveryService() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        let planned = try ComposeFile.plan(services: services, tag: "v2", repository: nil)
        #expect(
            images(planned) == [
                "web": "127.0.0.1:5000/demo/web:v2",
                "worker": "127.0.0.1:5000/demo/web:v2",
                "api": "127.0.0.1:5000/demo/api:v2",
                "cache": "redis:v2",
            ]
        )
        #expect(planned.map(\.name) == services.map(\.name))
    }

    @Test func tagWithRepositoryRetagsOnlyThatRepository() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        let repository = try ImageReference(parsing: "127.0.0.1:5000/demo/web:v3")
        let planned = try ComposeFile.plan(services: services, tag: "v3", repository: repository)
        #expect(
            images(planned) == [
                "web": "127.0.0.1:5000/demo/web:v3",
                "worker": "127.0.0.1:5000/demo/web:v3",
                "api": "127.0.0.1:5000/demo/api:1.0",
                "cache": "redis:7",
            ]
        )
    }

    @Test func dockerHubRepositoryMatchesFamiliarNames() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        let repository = try ImageReference(parsing: "docker.io/library/redis")
        let planned = try ComposeFile.plan(services: services, tag: "7.2", repository: repository)
        #expect(images(planned)["cache"] == "redis:7.2")
        #expect(images(planned)["web"] == "127.0.0.1:5000/demo/web:stable")
    }

    @Test func noTagKeepsEveryImage() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        #expect(try ComposeFile.plan(services: services, tag: nil, repository: nil) == services)
        let repository = try ImageReference(parsing: "redis")
        #expect(try ComposeFile.plan(services: services, tag: nil, repository: repository) == services)
    }

    @Test func sameImageKeepsItsSpelling() throws {
        let services = try ComposeFile.resolve("services:\n  web:\n    image: docker.io/library/nginx:1\n", environment: [:]).services
        let planned = try ComposeFile.plan(services: services, tag: "1", repository: nil)
        #expect(planned.first?.image == "docker.io/library/nginx:1")
    }

    @Test func invalidTagIsRejected() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        let error = #expect(throws: ComposeError.self) {
            try ComposeFile.plan(services: services, tag: "not valid", repository: nil)
        }
        #expect(error?.code == .invalidTag)
        #expect(error?.message.contains("\"not valid\"") == true)
        // Even when no service is of the named repository.
        let elsewhere = try ImageReference(parsing: "example.com/nothing")
        let unmatched = #expect(throws: ComposeError.self) {
            try ComposeFile.plan(services: services, tag: "-x", repository: elsewhere)
        }
        #expect(unmatched?.code == .invalidTag)
    }

    @Test func findsServicesUsingARepository() throws {
        let services = try ComposeFile.resolve(Self.targets, environment: [:]).services
        let web = try ImageReference(parsing: "127.0.0.1:5000/demo/web")
        #expect(ComposeFile.services(services, using: web).map(\.name) == ["web", "worker"])
        let other = try ImageReference(parsing: "127.0.0.1:5000/demo/other")
        #expect(ComposeFile.services(services, using: other).isEmpty)
    }

    @Test func applyingAPlanRewritesOnlyTheImages() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: [:])
        let repository = try ImageReference(parsing: "127.0.0.1:5000/demo/web")
        let plan = try ComposeFile.plan(services: resolved.services, tag: "v9", repository: repository)
        let applied = try resolved.applying(plan)
        #expect(applied.services.map(\.image) == ["redis:7", "127.0.0.1:5000/demo/web:v9"])
        #expect(applied.yaml.contains("image: 127.0.0.1:5000/demo/web:v9\n"))
        #expect(applied.yaml.contains("image: redis:7\n"))
        #expect(applied.yaml.contains("echo $$HOME && sleep 1"))
        // The rewritten file resolves to what the plan says.
        #expect(try ComposeFile.resolve(applied.yaml, environment: [:]).services == applied.services)
    }

    @Test func applyingAPlanForAnUnknownServiceFails() throws {
        let resolved = try ComposeFile.resolve(Self.stack, environment: [:])
        let stranger = try ResolvedService(name: "stranger", image: "nginx")
        let error = #expect(throws: ComposeError.self) { try resolved.applying([stranger]) }
        #expect(error?.code == .unknownService)
        #expect(error?.message.contains("\"stranger\"") == true)
    }
}

/// Hostile compose files are refused quickly instead of exhausting the server.
struct ComposeBombTests {
    @Test(.timeLimit(.minutes(1))) func nestedAliasesThatExpandExponentiallyAreRefused() throws {
        var text = "x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"
        for level in 1...9 {
            text += "x-l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        text += "services:\n  web:\n    image: nginx\n"
        let started = ContinuousClock.now
        #expect(throws: ComposeError.self) { try ComposeFile.resolve(text, environment: [:]) }
        #expect(ContinuousClock.now - started < .seconds(5))
        do {
            _ = try ComposeFile.resolve(text, environment: [:])
        } catch {
            #expect(error.message.contains("aliases"))
        }
    }
}
