import WharfProtocol
import Yams

/// Reads Docker Compose files: validation, interpolation as compose does it, and webhook tag targeting.
///
/// Wharf deploys images from registries, so every service must name an `image`; services that
/// only have a `build` section are rejected.
public enum ComposeFile {
    /// Validates `text`, interpolates every value with `environment`, and checks every service's image.
    ///
    /// Keys are not interpolated, as in compose. Merge keys (`<<`) and aliases are expanded.
    ///
    /// - Throws: ``ComposeError`` whose message names the problem and where it is, e.g.
    ///   `services.web.image: required variable SERVICE_TAG is missing a value: …`.
    public static func resolve(_ text: String, environment: [String: String]) throws(ComposeError) -> ResolvedCompose {
        guard let parsed = try ComposeYAML.parse(text) else {
            throw ComposeError(code: .invalidCompose, message: "the compose file is empty: it needs a `services` mapping")
        }
        try ComposeYAML.checkSize(parsed)
        let expanded = try ComposeYAML.expand(parsed, at: .root)
        try validateStructure(expanded)

        var unset: [String] = []
        let resolved = try ComposeYAML.interpolate(expanded, at: .root, environment: environment, unset: &unset)
        let services = try extractServices(resolved)
        let yaml = try ComposeYAML.serialize(ComposeYAML.escapeDollars(resolved))
        return ResolvedCompose(yaml: yaml, services: services, unsetVariables: unset.sorted())
    }

    /// Applies a webhook's tag to `services`: every service with no `repository`, else only those of that repository.
    ///
    /// A retagged image is written in its familiar form and keeps its registry host and port
    /// (`127.0.0.1:5000/demo/web:v2`); a digest it pinned is dropped. Other services, and all of
    /// them when `tag` is `nil`, keep their image exactly as written.
    ///
    /// - Throws: ``ComposeError`` with code `invalid_tag` when `tag` is not a valid Docker tag.
    public static func plan(
        services: [ResolvedService],
        tag: String?,
        repository: ImageReference?
    ) throws(ComposeError) -> [ResolvedService] {
        guard let tag else { return services }
        guard ImageReference.isValidTag(tag) else {
            throw ComposeError(
                code: .invalidTag,
                message: "\"\(tag)\" is not a valid image tag: use up to 128 letters, digits, '_', '.' or '-', "
                    + "not starting with '.' or '-'"
            )
        }
        var planned: [ResolvedService] = []
        planned.reserveCapacity(services.count)
        for service in services {
            if let repository, !service.reference.sameRepository(as: repository) {
                planned.append(service)
                continue
            }
            let retagged: ImageReference
            do {
                retagged = try service.reference.withTag(tag)
            } catch {
                throw ComposeError(code: .invalidTag, message: error.message, cause: error)
            }
            // Same image, however it was spelt: keep the user's spelling.
            planned.append(retagged == service.reference ? service : ResolvedService(name: service.name, reference: retagged))
        }
        return planned
    }

    /// Returns the services whose image is in `repository`, whatever their tag or digest.
    public static func services(_ services: [ResolvedService], using repository: ImageReference) -> [ResolvedService] {
        services.filter { $0.reference.sameRepository(as: repository) }
    }

    // MARK: - Validation

    /// Checks what does not depend on variables: a top-level mapping with a non-empty `services`
    /// mapping whose entries are mappings that name an image.
    private static func validateStructure(_ root: Node) throws(ComposeError) {
        guard case .mapping(let top) = root else {
            throw ComposeError(
                code: .invalidCompose,
                message: "the compose file must be a mapping at the top level, with a `services` key; found \(describe(root))",
                line: root.mark?.line,
                column: root.mark?.column
            )
        }
        guard let (servicesKey, servicesNode) = ComposeYAML.entry("services", in: top) else {
            throw ComposeError(
                code: .invalidCompose,
                message: "the compose file has no `services`: add a top-level `services` mapping with at least one service"
            )
        }
        let servicesMapping: Node.Mapping
        switch servicesNode {
        case .mapping(let mapping) where !mapping.isEmpty:
            servicesMapping = mapping
        case _ where ComposeYAML.isNull(servicesNode), .mapping:
            throw ComposeError(
                code: .invalidCompose,
                message: "services: the compose file defines no services; add at least one under `services`",
                path: "services",
                line: servicesKey.mark?.line,
                column: servicesKey.mark?.column
            )
        default:
            throw ComposeError(
                code: .invalidCompose,
                message: "services: must be a mapping of service names to service definitions, found \(describe(servicesNode))",
                path: "services",
                line: servicesNode.mark?.line,
                column: servicesNode.mark?.column
            )
        }

        for (key, definition) in servicesMapping {
            guard let name = key.scalar?.string, isValidServiceName(name) else {
                throw ComposeError(
                    code: .invalidCompose,
                    message: "services: the service name \(key.scalar.map { "\"\($0.string)\"" } ?? describe(key)) is invalid: "
                        + "use letters, digits, '.', '_' or '-'",
                    path: "services",
                    line: key.mark?.line,
                    column: key.mark?.column
                )
            }
            let path = ComposePath.root.key("services").key(name)
            let service: Node.Mapping
            switch definition {
            case .mapping(let mapping):
                service = mapping
            case _ where ComposeYAML.isNull(definition):
                throw missingImage(name, path: path, mark: key.mark)
            default:
                throw ComposeError(
                    code: .invalidCompose,
                    message: "\(path): service \"\(name)\" must be a mapping, found \(describe(definition))",
                    path: path.description,
                    line: definition.mark?.line,
                    column: definition.mark?.column
                )
            }
            guard let (_, image) = ComposeYAML.entry("image", in: service), !ComposeYAML.isNull(image) else {
                throw missingImage(name, path: path, mark: key.mark)
            }
            guard case .scalar = image else {
                throw ComposeError(
                    code: .invalidCompose,
                    message: "\(path.key("image")): the image of service \"\(name)\" must be a string, found \(describe(image))",
                    path: path.key("image").description,
                    line: image.mark?.line,
                    column: image.mark?.column
                )
            }
        }
    }

    private static func missingImage(_ name: String, path: ComposePath, mark: Mark?) -> ComposeError {
        ComposeError(
            code: .invalidCompose,
            message: "\(path): service \"\(name)\" has no image; an image is required because Wharf deploys "
                + "images from a registry and does not build them (build-only services are not supported)",
            path: path.description,
            line: mark?.line,
            column: mark?.column
        )
    }

    /// After interpolation: every service's image must be a valid reference. Sorted by service name.
    private static func extractServices(_ root: Node) throws(ComposeError) -> [ResolvedService] {
        guard case .mapping(let top) = root, let (_, servicesNode) = ComposeYAML.entry("services", in: top),
            case .mapping(let servicesMapping) = servicesNode
        else {
            // validateStructure has already rejected these shapes.
            throw ComposeError(code: .invalidCompose, message: "the compose file has no `services` mapping")
        }
        var services: [ResolvedService] = []
        for (key, definition) in servicesMapping {
            guard let name = key.scalar?.string, case .mapping(let service) = definition,
                let (_, imageNode) = ComposeYAML.entry("image", in: service), let image = imageNode.scalar?.string
            else { continue }
            let path = ComposePath.root.key("services").key(name).key("image")
            guard !image.isEmpty else {
                throw ComposeError(
                    code: .invalidImage,
                    message: "\(path): service \"\(name)\" has an empty image; check the variables it uses",
                    path: path.description,
                    line: imageNode.mark?.line,
                    column: imageNode.mark?.column
                )
            }
            do {
                services.append(try ResolvedService(name: name, image: image))
            } catch {
                throw ComposeError(
                    code: .invalidImage,
                    message: "\(path): service \"\(name)\" has an invalid image: \(error.message)",
                    path: path.description,
                    line: imageNode.mark?.line,
                    column: imageNode.mark?.column,
                    cause: error
                )
            }
        }
        return services.sorted { $0.name < $1.name }
    }

    /// compose's service-name pattern, `[a-zA-Z0-9._-]+`.
    private static func isValidServiceName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            ComposeYAML.isNull(node) ? "nothing" : "the value \"\(scalar.string.prefix(40))\""
        }
    }
}

extension ResolvedCompose {
    /// Returns this compose file with the images of `plan`'s services replaced, for the agent to deploy.
    ///
    /// Services that `plan` leaves out keep their image.
    ///
    /// - Throws: ``ComposeError`` with code `unknown_service` when `plan` names a service that is not here.
    public func applying(_ plan: [ResolvedService]) throws(ComposeError) -> ResolvedCompose {
        guard let parsed = try ComposeYAML.parse(yaml), case .mapping(var top) = parsed,
            let (servicesKey, servicesNode) = ComposeYAML.entry("services", in: top),
            case .mapping(var servicesMapping) = servicesNode
        else {
            throw ComposeError(code: .invalidCompose, message: "the resolved compose file has no `services` mapping")
        }
        var byName = Dictionary(services.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        for service in plan {
            guard let (key, definition) = ComposeYAML.entry(service.name, in: servicesMapping),
                case .mapping(var mapping) = definition,
                let (imageKey, _) = ComposeYAML.entry("image", in: mapping)
            else {
                throw ComposeError(
                    code: .unknownService,
                    message: "the plan names service \"\(service.name)\", which the compose file does not define",
                    path: ComposePath.root.key("services").key(service.name).description
                )
            }
            mapping[imageKey] = .scalar(ComposeYAML.stringScalar(service.image))
            servicesMapping[key] = .mapping(mapping)
            byName[service.name] = service
        }
        top[servicesKey] = .mapping(servicesMapping)
        let yaml = try ComposeYAML.serialize(.mapping(top))
        return ResolvedCompose(
            yaml: yaml,
            services: byName.values.sorted { $0.name < $1.name },
            unsetVariables: unsetVariables
        )
    }
}
