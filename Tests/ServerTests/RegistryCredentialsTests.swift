import Testing
import WharfProtocol
@testable import WharfServer

/// "Jobs whose images come from a known registry pull with those credentials" (CONTRACT.md),
/// whichever of its names the registry was added under.
struct RegistryCredentialsTests {
    @Test func aJobGetsTheCredentialsOfItsImagesRegistriesUnderAnyOfTheirNames() {
        let auths = [
            RegistryAuth(registry: "index.docker.io", username: "hub", password: "p1"),  // stored by an older server
            RegistryAuth(registry: "Registry.Example.com:5000", username: "ci", password: "p2"),
            RegistryAuth(registry: "other.example.com", username: "other", password: "p3"),
        ]
        let chosen = SQLiteStore.credentials(auths, for: ["myorg/private:1", "registry.example.com:5000/app:2", "nginx:1"])
        #expect(chosen.map(\.registry).sorted() == ["docker.io", "registry.example.com:5000"])
        #expect(chosen.map(\.username).sorted() == ["ci", "hub"])
        #expect(SQLiteStore.credentials(auths, for: ["127.0.0.1:5000/demo/web:v1"]).isEmpty)
    }
}
