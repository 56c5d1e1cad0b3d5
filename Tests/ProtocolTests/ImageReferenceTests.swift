import Foundation
import Testing
import WharfProtocol

struct ImageReferenceTests {
    static let sha256 = "sha256:" + String(repeating: "a1", count: 32)
    static let sha512 = "sha512:" + String(repeating: "0f", count: 64)

    /// One row of the grammar table: an input and its normalised parts, or the error it gives.
    struct Case: Sendable, CustomTestStringConvertible {
        enum Outcome: Sendable {
            /// domain, path, tag, digest, familiar name.
            case parsed(String, String, String?, String?, String)
            case failure(ImageReferenceError.Code)
        }

        let input: String
        let outcome: Outcome

        var testDescription: String { input.count > 60 ? "\(input.prefix(57))…" : input }

        static func parses(
            _ input: String,
            _ domain: String,
            _ path: String,
            tag: String? = "latest",
            digest: String? = nil,
            familiar: String
        ) -> Case {
            Case(input: input, outcome: .parsed(domain, path, tag, digest, familiar))
        }

        static func fails(_ input: String, _ code: ImageReferenceError.Code) -> Case {
            Case(input: input, outcome: .failure(code))
        }
    }

    static let cases: [Case] = [
        // Docker Hub names.
        .parses("nginx", "docker.io", "library/nginx", familiar: "nginx:latest"),
        .parses("nginx:1.25", "docker.io", "library/nginx", tag: "1.25", familiar: "nginx:1.25"),
        .parses("nginx:Latest_1", "docker.io", "library/nginx", tag: "Latest_1", familiar: "nginx:Latest_1"),
        .parses("library/nginx", "docker.io", "library/nginx", familiar: "nginx:latest"),
        .parses("docker.io/nginx", "docker.io", "library/nginx", familiar: "nginx:latest"),
        .parses("docker.io/library/nginx:alpine", "docker.io", "library/nginx", tag: "alpine", familiar: "nginx:alpine"),
        .parses("index.docker.io/user/app", "docker.io", "user/app", familiar: "user/app:latest"),
        .parses("user/app", "docker.io", "user/app", familiar: "user/app:latest"),
        .parses("foo/bar/baz:1", "docker.io", "foo/bar/baz", tag: "1", familiar: "foo/bar/baz:1"),
        .parses("docker.io/library/sub/nginx", "docker.io", "library/sub/nginx", familiar: "library/sub/nginx:latest"),
        .parses("user/a.b-c_d__e---f", "docker.io", "user/a.b-c_d__e---f", familiar: "user/a.b-c_d__e---f:latest"),
        // A bare name is never a host, even when it looks like one.
        .parses("localhost", "docker.io", "library/localhost", familiar: "localhost:latest"),
        .parses("localhost:5000", "docker.io", "library/localhost", tag: "5000", familiar: "localhost:5000"),
        // Registries.
        .parses("127.0.0.1:5000/demo/app:v1", "127.0.0.1:5000", "demo/app", tag: "v1", familiar: "127.0.0.1:5000/demo/app:v1"),
        .parses("localhost/app", "localhost", "app", familiar: "localhost/app:latest"),
        .parses("localhost:5000/app", "localhost:5000", "app", familiar: "localhost:5000/app:latest"),
        .parses("ghcr.io/a/b:1.2", "ghcr.io", "a/b", tag: "1.2", familiar: "ghcr.io/a/b:1.2"),
        .parses("my-registry:5000/app", "my-registry:5000", "app", familiar: "my-registry:5000/app:latest"),
        .parses("Example.com/app", "Example.com", "app", familiar: "Example.com/app:latest"),
        .parses("[::1]:5000/app:v", "[::1]:5000", "app", tag: "v", familiar: "[::1]:5000/app:v"),
        .parses(
            "registry.example.com:443/team/sub/app:2024.01.01-rc_1",
            "registry.example.com:443",
            "team/sub/app",
            tag: "2024.01.01-rc_1",
            familiar: "registry.example.com:443/team/sub/app:2024.01.01-rc_1"
        ),
        // Digests: no implicit tag when one is pinned.
        .parses("app@\(sha256)", "docker.io", "library/app", tag: nil, digest: sha256, familiar: "app@\(sha256)"),
        .parses("app:tag@\(sha256)", "docker.io", "library/app", tag: "tag", digest: sha256, familiar: "app:tag@\(sha256)"),
        .parses("ghcr.io/a/b@\(sha512)", "ghcr.io", "a/b", tag: nil, digest: sha512, familiar: "ghcr.io/a/b@\(sha512)"),
        // Lengths at the limits.
        .parses(
            String(repeating: "a", count: 237),
            "docker.io",
            "library/" + String(repeating: "a", count: 237),
            familiar: String(repeating: "a", count: 237) + ":latest"
        ),
        .parses(
            "app:" + String(repeating: "t", count: 128),
            "docker.io",
            "library/app",
            tag: String(repeating: "t", count: 128),
            familiar: "app:" + String(repeating: "t", count: 128)
        ),
        // Invalid references.
        .fails("", .empty),
        .fails("Nginx", .uppercaseName),
        .fails("user/App", .uppercaseName),
        .fails("localhost:5000/App", .uppercaseName),
        .fails("nginx:", .invalidTag),
        .fails("nginx:-x", .invalidTag),
        .fails("nginx:.x", .invalidTag),
        .fails("nginx:a/b", .invalidFormat),
        .fails("app:" + String(repeating: "t", count: 129), .invalidTag),
        .fails("nginx@sha256:abc", .invalidDigest),
        .fails("nginx@sha256:" + String(repeating: "AB", count: 32), .invalidDigest),
        .fails("nginx@sha256:" + String(repeating: "a", count: 63), .invalidDigest),
        .fails("nginx@md5:" + String(repeating: "a", count: 32), .unsupportedDigest),
        .fails("nginx@" + String(repeating: "a", count: 64), .invalidDigest),
        .fails(String(repeating: "ab", count: 32), .hexadecimalName),
        .fails(String(repeating: "a", count: 238), .nameTooLong),
        .fails("a//b", .invalidFormat),
        .fails("/app", .invalidFormat),
        .fails("app/", .invalidFormat),
        .fails("-app", .invalidFormat),
        .fails("app-", .invalidFormat),
        .fails("a..b", .invalidFormat),
        .fails("a___b", .invalidFormat),
        .fails("has space", .invalidFormat),
        .fails("host:port/app", .invalidFormat),
        .fails("exa_mple.com/app", .invalidFormat),
        .fails("-bad.com/app", .invalidFormat),
        .fails("[zz]:5000/app", .invalidFormat),
        .fails("app:tag:extra", .invalidFormat),
    ]

    @Test(arguments: cases)
    func parses(_ testCase: Case) throws {
        switch testCase.outcome {
        case .parsed(let domain, let path, let tag, let digest, let familiar):
            let reference = try ImageReference(parsing: testCase.input)
            #expect(reference.domain == domain)
            #expect(reference.path == path)
            #expect(reference.tag == tag)
            #expect(reference.digest == digest)
            #expect(reference.familiarName == familiar)
            #expect(reference.repository == "\(domain)/\(path)")
            // The normalised forms parse back to the same reference.
            #expect(try ImageReference(parsing: reference.description) == reference)
            #expect(try ImageReference(parsing: reference.familiarName) == reference)
        case .failure(let code):
            let error = #expect(throws: ImageReferenceError.self) {
                try ImageReference(parsing: testCase.input)
            }
            #expect(error?.code == code)
            #expect(error?.input == testCase.input)
            #expect(error?.message.hasPrefix("invalid image reference \"\(testCase.input.prefix(100))") == true)
        }
    }

    @Test func tableIsLargeEnough() {
        #expect(Self.cases.count >= 40)
    }

    @Test func describesTheFullyQualifiedReference() throws {
        #expect(try ImageReference(parsing: "nginx").description == "docker.io/library/nginx:latest")
        #expect(try ImageReference(parsing: "user/app:2").description == "docker.io/user/app:2")
        #expect(try ImageReference(parsing: "app:1@\(Self.sha256)").description == "docker.io/library/app:1@\(Self.sha256)")
        #expect(try ImageReference(parsing: "127.0.0.1:5000/demo/app").repository == "127.0.0.1:5000/demo/app")
        #expect(try ImageReference(parsing: "nginx").familiarRepository == "nginx")
    }

    @Test func implicitAndExplicitLatestAreTheSameImage() throws {
        #expect(try ImageReference(parsing: "nginx") == ImageReference(parsing: "docker.io/library/nginx:latest"))
        #expect(try ImageReference(parsing: "nginx") != ImageReference(parsing: "nginx:1"))
    }

    @Test func messagesSayWhatIsWrong() {
        let uppercase = #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: "user/App") }
        #expect(uppercase?.message.contains("\"user/App\" must be lowercase") == true)
        let official = #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: "Nginx:1") }
        #expect(official?.message == "invalid image reference \"Nginx:1\": the repository name \"Nginx\" must be lowercase")
        let host = #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: "host:port/app") }
        #expect(host?.message.contains("registry host \"host:port\"") == true)
        let tag = #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: "app:-x") }
        #expect(tag?.message.contains("tag \"-x\"") == true)
        let digest = #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: "app@md5:" + String(repeating: "a", count: 32)) }
        #expect(digest?.message.contains("md5") == true)
    }

    @Test func withTagReplacesTheTagAndDropsTheDigest() throws {
        let pinned = try ImageReference(parsing: "127.0.0.1:5000/demo/web:stable@\(Self.sha256)")
        let retagged = try pinned.withTag("development")
        #expect(retagged.tag == "development")
        #expect(retagged.digest == nil)
        #expect(retagged.familiarName == "127.0.0.1:5000/demo/web:development")
        #expect(retagged.sameRepository(as: pinned))
    }

    @Test func withTagRejectsAnInvalidTag() throws {
        let reference = try ImageReference(parsing: "nginx")
        let error = #expect(throws: ImageReferenceError.self) { try reference.withTag("bad tag") }
        #expect(error?.code == .invalidTag)
    }

    @Test(arguments: [
        ("latest", true), ("v1.2.3", true), ("_x", true), ("1", true), ("A-b_c.d", true),
        (String(repeating: "x", count: 128), true),
        ("", false), (".x", false), ("-x", false), ("a b", false), ("a/b", false), ("a:b", false), ("ü", false),
        (String(repeating: "x", count: 129), false),
    ])
    func validatesTags(_ tag: String, _ valid: Bool) {
        #expect(ImageReference.isValidTag(tag) == valid)
    }

    @Test(arguments: [
        ("nginx", "docker.io/library/nginx:1", true),
        ("nginx:1", "nginx@\(sha256)", true),
        ("user/app", "docker.io/user/app:v2", true),
        ("127.0.0.1:5000/demo/web", "127.0.0.1:5000/demo/web:dev", true),
        ("registry.example.com/app", "REGISTRY.example.com/app", true),
        ("127.0.0.1:5000/demo/web", "127.0.0.1:5001/demo/web", false),
        ("127.0.0.1:5000/demo/web", "demo/web", false),
        ("nginx", "user/nginx", false),
        ("ghcr.io/a/b", "ghcr.io/a/b/c", false),
    ])
    func comparesRepositories(_ left: String, _ right: String, _ same: Bool) throws {
        let a = try ImageReference(parsing: left)
        let b = try ImageReference(parsing: right)
        #expect(a.sameRepository(as: b) == same)
        #expect(b.sameRepository(as: a) == same)
    }

    @Test func codesAsTheFullyQualifiedString() throws {
        let reference = try ImageReference(parsing: "127.0.0.1:5000/demo/web:v1")
        let data = try JSONEncoder().encode([reference])
        #expect(String(decoding: data, as: UTF8.self) == #"["127.0.0.1:5000\/demo\/web:v1"]"#)
        #expect(try JSONDecoder().decode([ImageReference].self, from: data) == [reference])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([ImageReference].self, from: Data(#"["Bad/Name"]"#.utf8))
        }
    }
}
