// swift-tools-version: 6.1
// ringproxy: an MQTT edge load balancer on io_uring. The targets mirror the architecture in
// STYLE.md: CUring (thin C over liburing), CTLS (thin C over OpenSSL), MQTTPeek (pure parser),
// RingProxy (engine), ringproxy.
import PackageDescription

let engineSwiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v5),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

// `RINGPROXY_SANITIZE=1 swift build -Xswiftc -sanitize=address|thread` (scripts/sanitize.sh):
// the sanitizer's allocator must be the only one, so jemalloc is left out (the tests that read
// jemalloc's per-thread counters skip themselves then).
let sanitizing = Context.environment["RINGPROXY_SANITIZE"] != nil
let jemalloc: [LinkerSetting] = sanitizing ? [] : [.linkedLibrary("jemalloc")]

let package = Package(
    name: "ringproxy",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ringproxy", targets: ["ringproxy"]),
        .executable(name: "ringbench", targets: ["ringbench"]),
        .library(name: "RingProxy", targets: ["RingProxy"]),
        .library(name: "MQTTPeek", targets: ["MQTTPeek"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        .target(
            name: "CUring",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // Thin C over OpenSSL 3 (Debian's libssl-dev): the BIO over the worker's buffers, server
        // contexts, and the kTLS key hand-off.
        .target(
            name: "CTLS",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .target(name: "MQTTPeek"),
        .target(
            name: "RingProxy",
            dependencies: ["CUring", "CTLS", "MQTTPeek"],
            swiftSettings: engineSwiftSettings
        ),
        .executableTarget(
            name: "ringproxy",
            dependencies: [
                "RingProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)],
            linkerSettings: jemalloc
        ),
        // The load generator of Benchmarks/: io_uring clients, many source addresses.
        .executableTarget(
            name: "ringbench",
            dependencies: [
                "CUring",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/RingBench",
            swiftSettings: [.swiftLanguageMode(.v5), .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .testTarget(name: "MQTTPeekTests", dependencies: ["MQTTPeek"]),
        .testTarget(
            name: "RingProxyTests",
            dependencies: ["RingProxy", "CUring", "CTLS"],
            exclude: ["Config/Fixtures"],
            swiftSettings: [.swiftLanguageMode(.v5)],
            // jemalloc as the test process's allocator too, so the tests can read each
            // worker thread's allocation counter.
            linkerSettings: jemalloc
        ),
    ]
)
