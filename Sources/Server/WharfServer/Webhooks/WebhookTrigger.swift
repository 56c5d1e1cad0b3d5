import Hummingbird
import WharfProtocol

/// Where a job's trigger came from; the raw values are the contract's `trigger.source`.
public enum TriggerSource: String, Sendable, Hashable, Codable, CaseIterable {
    /// The management API (`POST /api/stacks`, `PUT`, `/redeploy`).
    case api
    /// A webhook call without a payload, or with an HTML form body.
    case webhook
    /// A registry notification envelope (CNCF Distribution and compatible registries).
    case registry
    /// A Docker Hub push webhook.
    case dockerhub
}

/// An image a webhook payload asks to deploy: a repository and the tag to run from it.
/// One push event of a registry notification: its `id` (when it has one) and what it pushed.
public struct RegistryEvent: Sendable, Hashable {
    public var id: String?
    public var target: ImageTarget

    public init(id: String?, target: ImageTarget) {
        self.id = id
        self.target = target
    }
}

public struct ImageTarget: Sendable, Hashable, CustomStringConvertible {
    /// The repository the payload names.
    public var repository: RepositoryHint
    /// The tag to deploy: the payload's tag, or the caller's `tag=` when there is one.
    public var tag: String

    /// Creates a target.
    public init(repository: RepositoryHint, tag: String) {
        self.repository = repository
        self.tag = tag
    }

    /// `host/path:tag`.
    public var description: String {
        "\(self.repository):\(self.tag)"
    }
}

/// What one call of `POST /api/stacks/webhooks/{token}` asks for, parsed from its query string
/// and body before the token is looked up.
///
/// How to apply it to a stack:
/// - `ignored` set: answer 200 `{"ignored": ignored}` and queue nothing.
/// - `targets` not empty (Docker Hub or registry payload): for each target in order, every
///   service whose image `target.repository.matches(image:)` runs `target.tag`; later targets
///   win over earlier ones for the same service, and so does a later call joining a queued job.
///   If no service matches any target, the payload is not for this stack: answer 200 ignored.
/// - else `tag` set: every service's image runs with that tag.
/// - `variables` are set in the stack's env, `pull` false skips the pull, `wait` is how long
///   to hold the answer for the job's end.
public struct WebhookTrigger: Sendable, Equatable {
    /// The most seconds a caller may ask to `wait`.
    public static let maxWait = 300

    /// What kind of caller this is, from the body's shape.
    public var source: TriggerSource
    /// The caller's `tag=` (from the query string, else from a form body); nil when not given.
    /// Already applied to `targets`, so it is only needed on its own when `targets` is empty.
    public var tag: String?
    /// Whether to pull images before deploying: `pullimage=false` turns it off.
    public var pull: Bool
    /// `wait=N`: seconds (0…300) to wait for the job to end before answering.
    public var wait: Int?
    /// Stack env variables to set, from every other query (and form) parameter.
    public var variables: [String: String]
    /// Images named by a Docker Hub or registry payload, oldest first, without repeats.
    public var targets: [ImageTarget]
    /// The registry events acted on, for "a repeated event id is not run twice".
    public var eventIds: [String]
    /// The registry events behind `targets`, in order, each with its target as the payload named
    /// it (`leaveOut(received:)` works `targets` out again from them).
    public var registryEvents: [RegistryEvent]
    /// Set when the payload must be answered 200 and otherwise ignored: why.
    public var ignored: String?

    /// Creates a trigger; the defaults are those of a bare `POST` without query or body.
    public init(
        source: TriggerSource = .webhook,
        tag: String? = nil,
        pull: Bool = true,
        wait: Int? = nil,
        variables: [String: String] = [:],
        targets: [ImageTarget] = [],
        eventIds: [String] = [],
        registryEvents: [RegistryEvent] = [],
        ignored: String? = nil
    ) {
        self.registryEvents = registryEvents
        self.source = source
        self.tag = tag
        self.pull = pull
        self.wait = wait
        self.variables = variables
        self.targets = targets
        self.eventIds = eventIds
        self.ignored = ignored
    }
}

// MARK: - Parsing

extension WebhookTrigger {
    /// Media types of CNCF Distribution's notification envelopes (registry 2.x sends v1).
    public static let registryEnvelopeMediaTypes: Set<String> = [
        "application/vnd.docker.distribution.events.v1+json",
        "application/vnd.docker.distribution.events.v2+json",
    ]

    /// Parses a webhook call.
    ///
    /// - Parameters:
    ///   - query: the query string's parameters, in order, already percent-decoded
    ///     (see `decodeQuery(_:)`).
    ///   - contentType: the `Content-Type` header, parameters allowed.
    ///   - body: the whole request body (at most 1 MiB; see `BodyLimitMiddleware`).
    ///   - userAgent: the `User-Agent` header. Deliberately not used to decide what the
    ///     payload is: any client can send any agent string, so the payload's shape decides.
    /// - Throws: a 400 `APIError`: `invalid_tag`, `invalid_pullimage`, `invalid_wait`,
    ///   `invalid_variable` or `invalid_payload`.
    ///
    /// Rules where the contract is silent:
    /// - A query parameter wins over a form field of the same name, and a Docker Hub or
    ///   registry payload's tag: the URL is what the webhook's owner configured.
    /// - A repeated parameter: the last one wins, and only its value is checked.
    /// - `tag`, `pullimage` and `wait` are reserved only in lower case; `TAG=x` is a variable.
    /// - A body of only whitespace counts as no body, whatever its content type.
    /// - JSON sent without a content type, or as `text/plain`, is still recognised.
    public static func parse(
        query: [(String, String)],
        contentType: String?,
        body: ByteBuffer,
        userAgent: String? = nil
    ) throws(APIError) -> WebhookTrigger {
        try self.parse(query: query, contentType: contentType, body: Array(body.readableBytesView), userAgent: userAgent)
    }

    /// Parses a webhook call whose body is given as bytes; see `parse(query:contentType:body:userAgent:)`.
    public static func parse(
        query: [(String, String)],
        contentType: String?,
        body: [UInt8],
        userAgent: String? = nil
    ) throws(APIError) -> WebhookTrigger {
        var trigger = WebhookTrigger()
        var formFields: [(String, String)] = []

        let isBlank = body.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if !isBlank {
            let mediaType = contentType.map(Self.mediaType(of:))
            switch mediaType {
            case "application/x-www-form-urlencoded":
                do {
                    formFields = try FormURLEncoding.decode(bytes: body).map { ($0.name, $0.value) }
                } catch {
                    throw .invalidPayload("The form body is not valid URL encoding near '\(Self.near(error))'.")
                }
            case let type? where Self.registryEnvelopeMediaTypes.contains(type):
                try trigger.applyRegistryEnvelope(Self.json(body, kind: "registry notification"), strict: true)
            case let type? where type == "application/json" || type == "text/json" || type.hasSuffix("+json"):
                try trigger.applyJSONPayload(Self.json(body, kind: "JSON"))
            case nil, "text/plain":
                guard body.first(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) == UInt8(ascii: "{")
                else {
                    throw .invalidPayload(
                        "The request body has no content type Wharf understands; send no body, an HTML form "
                            + "(application/x-www-form-urlencoded), a Docker Hub push or a registry notification (JSON)."
                    )
                }
                try trigger.applyJSONPayload(Self.json(body, kind: "JSON"))
            case let type?:
                throw .invalidPayload(
                    "Content type '\(APIError.quote(type))' is not supported; send no body, an HTML form "
                        + "(application/x-www-form-urlencoded), a Docker Hub push or a registry notification (JSON)."
                )
            }
        }

        // Form fields first, then the query string: with "last wins", the query wins.
        try trigger.applyParameters(formFields + query)
        if let tag = trigger.tag {
            for index in trigger.targets.indices {
                trigger.targets[index].tag = tag
            }
            trigger.targets = Self.unique(trigger.targets)
        }
        return trigger
    }

    /// Parses a webhook call from a Hummingbird request and its collected body.
    public static func parse(request: Request, body: ByteBuffer) throws(APIError) -> WebhookTrigger {
        try self.parse(
            query: try self.decodeQuery(request.uri.query),
            contentType: request.headers[.contentType],
            body: body,
            userAgent: request.headers[.userAgent]
        )
    }

    /// Decodes a raw query string (`request.uri.query`) into its parameters, in order:
    /// `+` is a space, `%XX` a byte, as Go's `url.ParseQuery` and browsers do.
    /// - Throws: 400 `invalid_query` for a malformed `%` escape or bytes that are not UTF-8.
    public static func decodeQuery(_ query: String?) throws(APIError) -> [(String, String)] {
        guard let query, !query.isEmpty else {
            return []
        }
        do {
            return try FormURLEncoding.decode(query).map { ($0.name, $0.value) }
        } catch {
            throw .invalidQuery("The query string is not valid URL encoding near '\(Self.near(error))'.")
        }
    }

    // MARK: Query and form parameters

    private mutating func applyParameters(_ parameters: [(String, String)]) throws(APIError) {
        var tag: String?
        var pullimage: String?
        var wait: String?
        var variables: [String: String] = [:]
        for (name, value) in parameters {
            switch name {
            case "tag": tag = value
            case "pullimage": pullimage = value
            case "wait": wait = value
            default:
                guard Self.isValidVariableName(name) else {
                    throw .invalidVariable(name: name)
                }
                guard !StackVariables.isReserved(name) else {
                    throw .invalidVariable(name: name, reason: StackVariables.reservedMessage(name))
                }
                variables[name] = value
            }
        }
        for (name, value) in variables where value.utf8.contains(0) {
            throw .invalidVariable(name: name, reason: "The value of variable '\(name)' contains a NUL character.")
        }
        if let tag {
            guard Self.isValidTag(tag) else {
                throw .invalidTag(tag)
            }
            self.tag = tag
        }
        if let pullimage {
            switch pullimage.lowercased() {
            case "true", "1": self.pull = true
            case "false", "0": self.pull = false
            default: throw .invalidPullImage(pullimage)
            }
        }
        if let wait {
            guard !wait.isEmpty, wait.utf8.count <= 3, wait.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                let seconds = Int(wait), seconds <= Self.maxWait
            else {
                throw .invalidWait(wait)
            }
            self.wait = seconds
        }
        self.variables = variables
    }

    /// Whether `tag` is a Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    public static func isValidTag(_ tag: some StringProtocol) -> Bool {
        let utf8 = tag.utf8
        guard let first = utf8.first, utf8.count <= 128 else {
            return false
        }
        guard Self.isWordByte(first) else {
            return false
        }
        return utf8.allSatisfy { Self.isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// Whether `name` is a stack variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isValidVariableName(_ name: some StringProtocol) -> Bool {
        guard let first = name.utf8.first, !(0x30...0x39).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy(Self.isWordByte)
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    // MARK: JSON payloads

    private mutating func applyJSONPayload(_ json: JSONValue) throws(APIError) {
        guard json.isObject else {
            throw .invalidPayload("The JSON payload must be an object.")
        }
        if json["events"] != nil {
            try self.applyRegistryEnvelope(json, strict: false)
        } else if json["push_data"] != nil {
            try self.applyDockerHubPush(json)
        } else {
            throw .invalidPayload(
                "The JSON payload is neither a Docker Hub push (with push_data.tag and repository.repo_name) "
                    + "nor a registry notification (with events)."
            )
        }
    }

    /// A Docker Hub push: `{"push_data": {"tag": …}, "repository": {"repo_name": "user/app", …}, …}`.
    private mutating func applyDockerHubPush(_ json: JSONValue) throws(APIError) {
        guard let tag = json["push_data"]?["tag"]?.string, !tag.isEmpty else {
            throw .invalidPayload("The Docker Hub payload has no push_data.tag.")
        }
        guard let repoName = json["repository"]?["repo_name"]?.string, !repoName.isEmpty else {
            throw .invalidPayload("The Docker Hub payload has no repository.repo_name.")
        }
        let path = repoName.contains("/") ? repoName : "library/\(repoName)"
        guard RepositoryHint.isValidPath(path) else {
            throw .invalidPayload("The Docker Hub payload's repository.repo_name '\(APIError.quote(repoName))' is not a repository name.")
        }
        guard Self.isValidTag(tag) else {
            throw .invalidTag(tag)
        }
        self.source = .dockerhub
        self.targets = [ImageTarget(repository: RepositoryHint(host: "docker.io", path: path), tag: tag)]
    }

    /// A CNCF Distribution notification envelope: `{"events": [{"id", "action", "target": {…}, "request": {…}}]}`.
    ///
    /// Only `push` events whose target has a tag are acted on: a manifest pushed by tag. Blob
    /// pushes, pushes by digest, pulls, mounts and deletes are skipped; an envelope with none
    /// to act on is `ignored` rather than refused, because registries resend anything not 2xx.
    private mutating func applyRegistryEnvelope(_ json: JSONValue, strict: Bool) throws(APIError) {
        guard let events = json["events"]?.array else {
            throw .invalidPayload("The registry notification has no events list.")
        }
        self.source = .registry
        var targets: [ImageTarget] = []
        var eventIds: [String] = []
        for (index, event) in events.enumerated() {
            guard event.isObject else {
                throw .invalidPayload("Event \(index) of the registry notification is not an object.")
            }
            guard event["action"]?.string == "push",
                let target = event["target"], let tag = target["tag"]?.string, !tag.isEmpty
            else {
                continue
            }
            guard let repository = target["repository"]?.string, RepositoryHint.isValidPath(repository) else {
                throw .invalidPayload("Event \(index) of the registry notification has no valid target.repository.")
            }
            guard Self.isValidTag(tag) else {
                throw .invalidTag(tag)
            }
            let host = Self.registryHost(of: event)
            let imageTarget = ImageTarget(repository: RepositoryHint(host: host, path: repository), tag: tag)
            targets.append(imageTarget)
            let id = event["id"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            registryEvents.append(RegistryEvent(id: id, target: imageTarget))
            if let id, !eventIds.contains(id) {
                eventIds.append(id)
            }
        }
        self.targets = Self.unique(targets)
        self.eventIds = eventIds
        if targets.isEmpty {
            self.ignored =
                events.isEmpty
                ? "The registry notification has no events."
                : "The registry notification has no push-by-tag event (a manifest pushed with a tag)."
        }
    }

    /// The registry's host as its clients address it: `request.host`, else the host of `target.url`.
    private static func registryHost(of event: JSONValue) -> String? {
        if let host = event["request"]?["host"]?.string, RepositoryHint.isValidHost(host) {
            return host
        }
        guard let url = event["target"]?["url"]?.string,
            let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://")
        else {
            return nil
        }
        let rest = url[url.index(colon, offsetBy: 3)...]
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return RepositoryHint.isValidHost(host) ? String(host) : nil
    }

    // MARK: Helpers

    private static func json(_ body: [UInt8], kind: String) throws(APIError) -> JSONValue {
        guard let json = JSONValue.parse(body) else {
            throw .invalidPayload("The \(kind) payload is not well-formed JSON.")
        }
        return json
    }

    /// `type/subtype` of a Content-Type header, lowercased, parameters dropped.
    static func mediaType(of contentType: String) -> String {
        let type = contentType.prefix { $0 != ";" }
        return String(type.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
            .lowercased()
    }

    /// Leaves out the registry events whose ids a stack has `received` before, so that an event a
    /// registry resends together with a new one is not deployed again (it could move a service
    /// back to an older tag). With no event left, the call is `ignored`.
    mutating func leaveOut(received: Set<String>) {
        guard eventIds.contains(where: received.contains) else { return }
        eventIds.removeAll(where: received.contains)
        var kept = registryEvents.filter { event in event.id.map { !received.contains($0) } ?? true }.map(\.target)
        if let tag {
            for index in kept.indices { kept[index].tag = tag }
        }
        targets = Self.unique(kept)
        if targets.isEmpty { ignored = "event already received" }
    }

    private static func unique(_ targets: [ImageTarget]) -> [ImageTarget] {
        // Keep the last occurrence of each target, so the order stays "oldest first".
        var seen = Set<ImageTarget>()
        var reversed: [ImageTarget] = []
        for target in targets.reversed() where seen.insert(target).inserted {
            reversed.append(target)
        }
        return reversed.reversed()
    }

    private static func near(_ error: FormURLEncoding.DecodingError) -> String {
        switch error {
        case .badPercentEscape(let near), .notUTF8(let near): APIError.quote(near)
        }
    }
}
