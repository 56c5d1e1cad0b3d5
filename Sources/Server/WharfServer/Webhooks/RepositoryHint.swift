/// The image repository a webhook payload names: a registry host (with port, if any) and a
/// repository path, e.g. host `"127.0.0.1:5000"`, path `"demo/web"`.
///
/// Docker Hub repositories have host `"docker.io"`; Docker Hub's official images have the
/// path `library/<name>`, as Docker spells them in full. A nil host means "any registry".
public struct RepositoryHint: Sendable, Hashable, CustomStringConvertible {
    /// Registry host, lowercase, with `:port` when there is one; nil when the payload names none.
    public var host: String?
    /// Repository path within the registry, e.g. `"demo/web"` or `"library/nginx"`.
    public var path: String

    /// Creates a hint. `host` is lowercased; `index.docker.io` and `registry-1.docker.io` become `docker.io`.
    public init(host: String?, path: String) {
        self.host = host.map(Self.canonicalHost)
        self.path = path
    }

    /// `host/path`, or just `path` without a host.
    public var description: String {
        self.host.map { "\($0)/\(self.path)" } ?? self.path
    }

    /// Whether a compose service's image (after interpolation), e.g. `localhost:5000/demo/web:1.2`,
    /// `nginx` or `user/app@sha256:…`, is in this repository.
    ///
    /// Image references are normalised as Docker does: no registry host means `docker.io`, and
    /// a single-component Docker Hub name is under `library/`. Tags and digests are ignored.
    /// Hosts compare case-insensitively, and the loopback names `localhost`, `127.0.0.1` and
    /// `[::1]` count as the same host when the ports are equal: a registry on the Docker host
    /// sees `127.0.0.1:5000` in the request while the stack may say `localhost:5000`.
    public func matches(image: String) -> Bool {
        guard let reference = Self.normalize(image: image) else {
            return false
        }
        guard reference.path == self.path else {
            return false
        }
        guard let host = self.host else {
            return true
        }
        return Self.sameHost(host, reference.host)
    }

    /// Splits an image reference into canonical host and path, dropping tag and digest.
    static func normalize(image: String) -> (host: String, path: String)? {
        var name = Substring(image)
        if let at = name.firstIndex(of: "@") {
            name = name[..<at]
        }
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            name = name[..<colon]
        }
        guard !name.isEmpty else {
            return nil
        }
        let host: String
        var path: Substring
        if let slash = name.firstIndex(of: "/") {
            let first = name[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
                host = canonicalHost(String(first))
                path = name[name.index(after: slash)...]
            } else {
                host = "docker.io"
                path = name
            }
        } else {
            host = "docker.io"
            path = name
        }
        if host == "docker.io" && !path.contains("/") {
            path = "library/" + path
        }
        return (host, String(path))
    }

    static func canonicalHost(_ host: String) -> String {
        let lowered = host.lowercased()
        switch lowered {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": return "docker.io"
        default: return lowered
        }
    }

    static func sameHost(_ a: String, _ b: String) -> Bool {
        if a == b {
            return true
        }
        let (aName, aPort) = self.splitPort(a)
        let (bName, bPort) = self.splitPort(b)
        let loopback: Set<Substring> = ["localhost", "127.0.0.1", "[::1]"]
        return aPort == bPort && loopback.contains(aName) && loopback.contains(bName)
    }

    private static func splitPort(_ host: String) -> (name: Substring, port: Substring?) {
        // "[::1]:5000" — the port follows the last colon after a closing bracket, if any.
        let afterBracket = host.lastIndex(of: "]").map { host.index(after: $0) } ?? host.startIndex
        if let colon = host[afterBracket...].lastIndex(of: ":") {
            return (host[..<colon], host[host.index(after: colon)...])
        }
        return (host[...], nil)
    }

    /// Whether `path` is a valid repository path: lowercase components of letters and digits,
    /// separated inside by `.`, `_`, `__` or runs of `-`, joined by `/` (Docker's grammar).
    static func isValidPath(_ path: some StringProtocol) -> Bool {
        guard !path.isEmpty, path.utf8.count <= 255 else {
            return false
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            // alnum runs separated by exactly one of ".", "_", "__" or a run of "-"
            var separator: [UInt8] = []
            var sawAlnum = false
            for byte in component.utf8 {
                if Self.isLowerAlnum(byte) {
                    guard separator.isEmpty || Self.isSeparator(separator) else {
                        return false
                    }
                    separator.removeAll()
                    sawAlnum = true
                } else {
                    guard sawAlnum, byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") else {
                        return false
                    }
                    separator.append(byte)
                }
            }
            guard sawAlnum, separator.isEmpty else {
                return false
            }
        }
        return true
    }

    private static func isSeparator(_ run: [UInt8]) -> Bool {
        run == [UInt8(ascii: ".")] || run == [UInt8(ascii: "_")] || run == [UInt8(ascii: "_"), UInt8(ascii: "_")]
            || run.allSatisfy { $0 == UInt8(ascii: "-") }
    }

    /// Whether `host` looks like a registry host, `name[:port]` or `[v6]:port`.
    static func isValidHost(_ host: some StringProtocol) -> Bool {
        !host.isEmpty && host.utf8.count <= 255
            && host.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"),
                    UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):
                    true
                default:
                    false
                }
            }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
