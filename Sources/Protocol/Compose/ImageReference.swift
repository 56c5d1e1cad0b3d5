/// A Docker image reference, parsed and normalised as Docker's `reference.ParseNormalizedNamed` does.
///
/// `nginx` becomes domain `docker.io`, path `library/nginx`, tag `latest`; `user/app` becomes
/// `docker.io/user/app:latest`; a first component with `.` or `:`, `localhost`, or an upper-case
/// letter is a registry host (`127.0.0.1:5000/demo/app:v1`, `ghcr.io/a/b:1.2`). A reference with
/// neither tag nor digest gets the tag `latest`, as `docker pull` would use.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host, with its port if any, e.g. `docker.io` or `127.0.0.1:5000`.
    public let domain: String
    /// The repository path inside the registry, e.g. `library/nginx` or `demo/app`.
    public let path: String
    /// The tag, e.g. `latest`; `nil` only when the reference pins a digest without a tag.
    public let tag: String?
    /// The content digest, e.g. `sha256:…`, if the reference pins one.
    public let digest: String?

    /// The registry's name for the Docker Hub, which familiar names leave out.
    public static let defaultDomain = "docker.io"
    /// The longest repository name (domain and path) Docker accepts.
    public static let maximumNameLength = 255

    /// Parses and normalises `string`, e.g. `nginx`, `user/app:1.0` or `127.0.0.1:5000/demo/app@sha256:…`.
    ///
    /// - Throws: ``ImageReferenceError`` naming the part that is wrong.
    public init(parsing string: String) throws(ImageReferenceError) {
        self = try ReferenceParser(input: string).parse()
    }

    init(domain: String, path: String, tag: String?, digest: String?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    /// The fully qualified repository without tag or digest, e.g. `docker.io/library/nginx`.
    public var repository: String { "\(domain)/\(path)" }

    /// The fully qualified reference, e.g. `docker.io/library/nginx:latest`.
    public var description: String { repository + suffix }

    /// The repository as `docker` prints it: `nginx`, `user/app`, `127.0.0.1:5000/demo/app`.
    public var familiarRepository: String {
        guard domain == Self.defaultDomain else { return repository }
        let officialPrefix = "library/"
        if path.hasPrefix(officialPrefix) {
            let remainder = path.dropFirst(officialPrefix.count)
            if !remainder.contains("/") { return String(remainder) }
        }
        return path
    }

    /// The reference as `docker` prints it: `nginx:latest`, `user/app:1.0`, `127.0.0.1:5000/demo/app:v1`.
    public var familiarName: String { familiarRepository + suffix }

    /// Returns this repository with `tag` and without a digest, since a new tag names a new image.
    ///
    /// - Throws: ``ImageReferenceError`` when `tag` is not a valid Docker tag.
    public func withTag(_ tag: String) throws(ImageReferenceError) -> ImageReference {
        guard Self.isValidTag(tag) else {
            throw ImageReferenceError(
                code: .invalidTag,
                message: "\"\(tag)\" is not a valid image tag: use up to 128 letters, digits, '_', '.' "
                    + "or '-', not starting with '.' or '-'",
                input: tag
            )
        }
        return ImageReference(domain: domain, path: path, tag: tag, digest: nil)
    }

    /// Tells whether `other` names the same repository (registry host and path), ignoring tags and digests.
    ///
    /// Host names compare without regard to case, as DNS does.
    public func sameRepository(as other: ImageReference) -> Bool {
        path == other.path && domain.lowercased() == other.domain.lowercased()
    }

    /// Tells whether `tag` is a valid Docker tag, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    public static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128, ASCII.isWord(first) else { return false }
        return bytes.dropFirst().allSatisfy { ASCII.isWord($0) || $0 == ASCII.dot || $0 == ASCII.minus }
    }

    private var suffix: String {
        var text = ""
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest }
        return text
    }
}

extension ImageReference: Codable {
    /// Decodes a reference from its string form, normalising it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            self = try ImageReference(parsing: string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    /// Encodes the reference as its fully qualified string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Why a string is not a valid image reference.
public struct ImageReferenceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable machine-readable kind of an ``ImageReferenceError``.
    public enum Code: String, Hashable, Sendable {
        /// The reference is empty.
        case empty = "empty_reference"
        /// The reference does not follow `[host[:port]/]path[:tag][@digest]`.
        case invalidFormat = "invalid_reference_format"
        /// The repository path has upper-case letters.
        case uppercaseName = "uppercase_repository_name"
        /// The repository name is longer than 255 characters.
        case nameTooLong = "repository_name_too_long"
        /// The reference is a bare 64-hex-digit string, which Docker reserves for image IDs.
        case hexadecimalName = "hexadecimal_repository_name"
        /// The tag is not a valid Docker tag.
        case invalidTag = "invalid_tag"
        /// The digest is malformed or has the wrong length for its algorithm.
        case invalidDigest = "invalid_digest"
        /// The digest uses an algorithm other than sha256, sha384 or sha512.
        case unsupportedDigest = "unsupported_digest"
    }

    /// The kind of failure.
    public let code: Code
    /// A human sentence quoting the input and naming what is wrong with it.
    public let message: String
    /// The text that was parsed.
    public let input: String

    /// The message.
    public var description: String { message }
}

// MARK: - Parsing

private enum ASCII {
    static let dot = UInt8(ascii: ".")
    static let minus = UInt8(ascii: "-")
    static let underscore = UInt8(ascii: "_")
    static let colon = UInt8(ascii: ":")
    static let slash = UInt8(ascii: "/")
    static let at = UInt8(ascii: "@")
    static let plus = UInt8(ascii: "+")

    static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || isDigit(byte)
    }

    static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool { isLetter(byte) || isDigit(byte) }

    static func isWord(_ byte: UInt8) -> Bool { isAlphanumeric(byte) || byte == underscore }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    static func isLowerHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}

/// A port of distribution/reference's `ParseNormalizedNamed` followed by `TagNameOnly`.
private struct ReferenceParser {
    let input: String

    func parse() throws(ImageReferenceError) -> ImageReference {
        guard !input.isEmpty else {
            throw failure(.empty, "an image reference cannot be empty")
        }
        let bytes = Array(input.utf8)
        if bytes.count == 64, bytes.allSatisfy(ASCII.isLowerHexDigit) {
            throw failure(
                .hexadecimalName,
                "a 64-character hexadecimal string is an image ID, not a repository name"
            )
        }

        let (domain, remainder, addedPrefix) = splitDockerDomain(input)
        // Docker checks case on the text before the first ':' of the remainder, which is the path.
        let remoteName = remainder.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if remoteName.lowercased() != remoteName {
            let written = addedPrefix ? remoteName.dropFirst(Self.officialPrefix.count) : remoteName
            throw failure(.uppercaseName, "the repository name \"\(written)\" must be lowercase")
        }

        var name = Substring(remainder)
        var digest: Substring?
        if let at = name.firstIndex(of: "@") {
            digest = name[name.index(after: at)...]
            name = name[..<at]
        }
        var tag: Substring?
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            tag = name[name.index(after: colon)...]
            name = name[..<colon]
        }

        try validateDomain(domain)
        try validatePath(name)
        if let tag, !ImageReference.isValidTag(String(tag)) {
            throw failure(
                .invalidTag,
                "the tag \"\(tag)\" is not valid: use up to 128 letters, digits, '_', '.' or '-', "
                    + "not starting with '.' or '-'"
            )
        }
        if let digest { try validateDigestFormat(digest) }

        let fullName = "\(domain)/\(name)"
        if fullName.utf8.count > ImageReference.maximumNameLength {
            throw failure(
                .nameTooLong,
                "the repository name \"\(shown(fullName))\" is longer than \(ImageReference.maximumNameLength) characters"
            )
        }
        if let digest { try validateDigestValue(digest) }

        let finalTag = tag.map(String.init) ?? (digest == nil ? "latest" : nil)
        return ImageReference(domain: domain, path: String(name), tag: finalTag, digest: digest.map(String.init))
    }

    static let officialPrefix = "library/"

    /// Docker's `splitDockerDomain`: decides whether the first component is a registry host.
    ///
    /// `addedPrefix` tells whether `library/` was put in front of a Docker Hub official image.
    private func splitDockerDomain(_ name: String) -> (domain: String, remainder: String, addedPrefix: Bool) {
        guard let slash = name.firstIndex(of: "/") else {
            return (ImageReference.defaultDomain, Self.officialPrefix + name, true)
        }
        let first = String(name[..<slash])
        let rest = String(name[name.index(after: slash)...])
        let domain: String
        let remainder: String
        if first == "localhost" || first.contains(".") || first.contains(":") || first.lowercased() != first {
            domain = first == "index.docker.io" ? ImageReference.defaultDomain : first
            remainder = rest
        } else {
            domain = ImageReference.defaultDomain
            remainder = name
        }
        if domain == ImageReference.defaultDomain, !remainder.contains("/") {
            return (domain, Self.officialPrefix + remainder, true)
        }
        return (domain, remainder, false)
    }

    /// `host[:port]` where host is a DNS name, an IPv4 address, or `[IPv6]`.
    private func validateDomain(_ domain: String) throws(ImageReferenceError) {
        let bytes = Array(domain.utf8)
        var host = bytes[...]
        var port: ArraySlice<UInt8>?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { throw badDomain(domain) }
            let inner = bytes[1..<close]
            guard !inner.isEmpty, inner.allSatisfy({ ASCII.isHexDigit($0) || $0 == ASCII.colon }) else {
                throw badDomain(domain)
            }
            host = bytes[...close]
            let after = bytes[(close + 1)...]
            if let first = after.first {
                guard first == ASCII.colon else { throw badDomain(domain) }
                port = after.dropFirst()
            }
        } else {
            if let colon = bytes.firstIndex(of: ASCII.colon) {
                host = bytes[..<colon]
                port = bytes[(colon + 1)...]
            }
            let labels = host.split(separator: ASCII.dot, omittingEmptySubsequences: false)
            let validLabels = labels.allSatisfy { label in
                guard let first = label.first, let last = label.last else { return false }
                return ASCII.isAlphanumeric(first) && ASCII.isAlphanumeric(last)
                    && label.allSatisfy { ASCII.isAlphanumeric($0) || $0 == ASCII.minus }
            }
            guard validLabels else { throw badDomain(domain) }
        }
        if let port, port.isEmpty || !port.allSatisfy(ASCII.isDigit) {
            throw badDomain(domain)
        }
    }

    /// Path components `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*` joined by `/`.
    private func validatePath(_ path: Substring) throws(ImageReferenceError) {
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard isValidPathComponent(Array(component.utf8)) else {
                let shown = component.isEmpty ? "an empty path component" : "the path component \"\(component)\""
                throw failure(
                    .invalidFormat,
                    "\(shown) is not valid: use lowercase letters and digits, separated by '.', '_', '__' or dashes"
                )
            }
        }
    }

    private func isValidPathComponent(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first, let last = bytes.last,
            ASCII.isLowerAlphanumeric(first), ASCII.isLowerAlphanumeric(last)
        else { return false }
        var separator: [UInt8] = []
        for byte in bytes {
            if ASCII.isLowerAlphanumeric(byte) {
                guard isValidSeparator(separator) else { return false }
                separator.removeAll(keepingCapacity: true)
            } else {
                separator.append(byte)
            }
        }
        return true
    }

    private func isValidSeparator(_ separator: [UInt8]) -> Bool {
        switch separator {
        case [], [ASCII.dot], [ASCII.underscore], [ASCII.underscore, ASCII.underscore]: true
        default: separator.allSatisfy { $0 == ASCII.minus }
        }
    }

    /// The grammar `algorithm:hex` with `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*` and 32+ hex digits.
    private func validateDigestFormat(_ digest: Substring) throws(ImageReferenceError) {
        let parts = digest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let bad = failure(.invalidDigest, "the digest \"\(digest)\" is not valid: expected algorithm:hex, e.g. sha256:<64 hex digits>")
        guard parts.count == 2 else { throw bad }
        let algorithm = Array(parts[0].utf8)
        let hex = Array(parts[1].utf8)
        var expectLetter = true
        for byte in algorithm {
            if expectLetter {
                guard ASCII.isLetter(byte) else { throw bad }
                expectLetter = false
            } else if [ASCII.minus, ASCII.underscore, ASCII.plus, ASCII.dot].contains(byte) {
                expectLetter = true
            } else if !ASCII.isAlphanumeric(byte) {
                throw bad
            }
        }
        guard !algorithm.isEmpty, !expectLetter, hex.count >= 32, hex.allSatisfy(ASCII.isHexDigit) else { throw bad }
    }

    /// go-digest's check: a known algorithm and exactly its length of lowercase hex.
    private func validateDigestValue(_ digest: Substring) throws(ImageReferenceError) {
        let parts = digest.split(separator: ":", maxSplits: 1)
        let algorithm = String(parts[0])
        let hex = Array(parts[1].utf8)
        let lengths = ["sha256": 64, "sha384": 96, "sha512": 128]
        guard let length = lengths[algorithm] else {
            throw failure(
                .unsupportedDigest,
                "the digest algorithm \"\(algorithm)\" is not supported: use sha256, sha384 or sha512"
            )
        }
        guard hex.count == length else {
            throw failure(.invalidDigest, "a \(algorithm) digest has \(length) hex digits, \"\(digest)\" has \(hex.count)")
        }
        guard hex.allSatisfy(ASCII.isLowerHexDigit) else {
            throw failure(.invalidDigest, "the digest \"\(digest)\" must use lowercase hex digits")
        }
    }

    private func badDomain(_ domain: String) -> ImageReferenceError {
        failure(.invalidFormat, "the registry host \"\(domain)\" is not a valid host name with an optional port")
    }

    private func failure(_ code: ImageReferenceError.Code, _ reason: String) -> ImageReferenceError {
        ImageReferenceError(code: code, message: "invalid image reference \"\(shown(input))\": \(reason)", input: input)
    }

    /// Long inputs are cut in messages, which may end up in logs and HTTP responses.
    private func shown(_ text: some StringProtocol) -> String {
        text.count > 100 ? text.prefix(100) + "…" : String(text)
    }
}
