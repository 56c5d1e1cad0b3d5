// swift-tools-version:6.1
import PackageDescription

// The HTTP ceiling of Wharf's own stack: Hummingbird 2.28.1 (the version wharf-server uses) with
// one route that answers 202 and does nothing else. bench/run.sh builds and measures it next to
// wharf-server's webhook route.
let package = Package(
    name: "bare-hummingbird",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "bare-hummingbird",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Sources/BareHummingbird",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
