import WharfProtocol

/// A compose file after interpolation, as `docker compose config` shows it, with its services' images.
public struct ResolvedCompose: Hashable, Sendable {
    /// The resolved document re-serialised as YAML.
    ///
    /// Merge keys and aliases are expanded and every literal `$` in a value is written `$$`, as
    /// `docker compose config` does, so giving this text back to compose yields the same values.
    public let yaml: String
    /// The services, sorted by name, each with its image as written after interpolation.
    public let services: [ResolvedService]
    /// The variables used without a default that were not set, sorted; compose warns about these.
    public let unsetVariables: [String]

    /// Creates a resolved compose file from its parts.
    public init(yaml: String, services: [ResolvedService], unsetVariables: [String]) {
        self.yaml = yaml
        self.services = services
        self.unsetVariables = unsetVariables
    }
}

/// One service of a resolved compose file: its name and the image it runs.
public struct ResolvedService: Hashable, Sendable {
    /// The service's key under `services`.
    public let name: String
    /// The image as written in the compose file after interpolation, e.g. `127.0.0.1:5000/demo/web:stable`.
    public let image: String
    /// The image parsed and normalised.
    public let reference: ImageReference

    /// Creates a service from its name and image text.
    ///
    /// - Throws: ``ImageReferenceError`` when `image` is not a valid image reference.
    public init(name: String, image: String) throws(ImageReferenceError) {
        self.name = name
        self.image = image
        self.reference = try ImageReference(parsing: image)
    }

    /// Creates a service from an already parsed image, written in its familiar form.
    public init(name: String, reference: ImageReference) {
        self.name = name
        self.image = reference.familiarName
        self.reference = reference
    }
}

extension ResolvedService: Codable {
    private enum CodingKeys: String, CodingKey {
        case name
        case image
    }

    /// Decodes `{"name", "image"}`, parsing the image.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .name)
        let image = try container.decode(String.self, forKey: .image)
        do {
            try self.init(name: name, image: image)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .image, in: container, debugDescription: error.message)
        }
    }

    /// Encodes `{"name", "image"}`, the shape of the API's service lists.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(image, forKey: .image)
    }
}
