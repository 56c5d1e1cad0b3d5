// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "wharf",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "wharf-server", targets: ["wharf-server"]),
        .executable(name: "wharf-agent", targets: ["wharf-agent"]),
        .executable(name: "wharf", targets: ["wharf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", exact: "1.0.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // Hummingbird's own: the webhook lane sits in its HTTP/1 pipeline (Sources/Server/WharfServer/HTTP/WebhookLane.swift).
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            path: "Sources/CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ"],
            path: "Sources/ZeroMQ",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WharfProtocol",
            dependencies: [],
            path: "Sources/Protocol",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WharfServer",
            dependencies: [
                "ZeroMQ", "WharfProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Server/WharfServer",
            resources: [.copy("Resources/ui"), .copy("Resources/install-agent.sh")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "wharf-server",
            dependencies: [
                "WharfServer",
                "WharfProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Server/wharf-server",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WharfAgent",
            dependencies: [
                "ZeroMQ", "WharfProtocol",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Agent/WharfAgent",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "wharf-agent",
            dependencies: [
                "WharfAgent",
                "WharfProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Agent/wharf-agent",
            // Compiled with the flag too: the static Foundation module brings the link entries of its own
            // static dependencies (CoreFoundation, ICU, ...).
            swiftSettings: swiftSettings + [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))],
            // The release agent carries the Swift runtime and Foundation statically, as the Docker image
            // builds it (--static-swift-stdlib): only the code it runs is paged in, not every shared
            // library's relocations and metadata. lld (shipped with the toolchain) packs the relative
            // relocations (DT_RELR, glibc >= 2.36): 2 MiB of relocation table less to read at start.
            // No dynamic exports: the driver's -export-dynamic put 7,300 of the package's symbols in
            // .dynsym, and every symbol lookup of the loader (libc's, libzmq's...) searches the
            // executable first; without them, 538 remain and ~0.6 MiB less is paged in.
            // Idle RSS 27.2 → 21.5 → 19.9 MiB, then 0.6 MiB less in an A/B of this flag (bench/FINDINGS.md).
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                           "-Xlinker", "--no-export-dynamic"],
                                          .when(configuration: .release))]
        ),
        .target(
            name: "WharfCLI",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/CLI/WharfCLI",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "wharf",
            dependencies: ["WharfCLI"],
            path: "Sources/CLI/wharf",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["WharfCLI", "WharfTestSupport"],
            path: "Tests/CLITests",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WharfTestSupport",
            path: "Tests/WharfTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["WharfTestSupport"],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: ["ZeroMQ", "WharfTestSupport"],
            path: "Tests/ZeroMQTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["WharfProtocol"],
            path: "Tests/ProtocolTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "WharfServer", "WharfAgent", "ZeroMQ", "WharfProtocol", "WharfTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/ServerTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UITests",
            dependencies: ["WharfTestSupport", "WharfAgent"],
            path: "Tests/UITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "WharfAgent", "WharfProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/AgentTests",
            swiftSettings: swiftSettings
        ),
    ]
)
