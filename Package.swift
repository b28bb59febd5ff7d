// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "telestation",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "telestation", targets: ["telestation"]),
        .executable(name: "telestation-hub", targets: ["telestation-hub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Already in the graph through Hummingbird; named so Hub can import HTTPTypes directly.
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        // Already in the graph through Hummingbird: errno values (swift-system)
        // and the shared thread pool for blocking work (NIOPosix).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries from Debian's -dev packages, each with a small shim
        // header for the variadic calls and macros Swift cannot import.
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CV4L2", pkgConfig: "libv4l2",
            providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(
            name: "CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        // libjxl: lossless JPEG recompression for the link (see Recompression).
        // Not through pkg-config: its -DHWY_SHARED_DEFINE is a flag SwiftPM
        // refuses, and the C API does not need it.
        .systemLibrary(name: "CJXL", providers: [.apt(["libjxl-dev"])]),
        // Kernel input events (evdev) for capture buttons; header only.
        .systemLibrary(name: "CInput"),
        // glibc's mallopt, for the daemon's allocator settings; header only.
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(
            name: "CGPIOD", pkgConfig: "libgpiod",
            providers: [.apt(["libgpiod-dev"])]),

        // What every module shares: the error shape, the system-call funnel,
        // the pool for blocking work, digests, exit statuses, tus wire pieces.
        .target(
            name: "Basics",
            dependencies: [
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Settings as plain values; no parser, so the low modules stay small.
        .target(
            name: "Config",
            dependencies: ["Basics", .product(name: "Crypto", package: "swift-crypto")]),
        // The TOML file (and camera profiles) → validated settings.
        .target(
            name: "ConfigFile",
            dependencies: ["Config", "Sneakernet", .product(name: "TOMLKit", package: "TOMLKit")]),
        // The journald log handler both executables use.
        .target(
            name: "JournalLog",
            dependencies: [.product(name: "Logging", package: "swift-log")]),
        // The pixel loops Swift's generic SIMD does not vectorise (SSE2/NEON).
        .target(name: "CPixelKernels"),
        .target(
            name: "Imaging",
            dependencies: ["CTurboJPEG", "CPixelKernels", "Basics"]),
        // The camera's JPEG as JPEG XL for the link, and the original rebuilt
        // bit for bit at the hub (libjxl's JPEG reconstruction).
        .target(
            name: "Recompression",
            dependencies: ["CJXL", "CMalloc", "Basics"]),
        // DICOM Part 10 objects around the camera's JPEG, written by hand.
        .target(
            name: "Dicom",
            dependencies: ["Basics", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Capture",
            dependencies: [
                "CV4L2", "CInput", "CGPIOD", "Basics", "Config", "Imaging",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "Spool",
            dependencies: [
                "Basics", "Config", "Imaging",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The capture and recompression benchmarks (bench/capture), built with
        // the package's own modules: `swift build -c release --product station-bench`.
        .executableTarget(
            name: "station-bench",
            dependencies: ["Imaging", "Recompression"],
            path: "bench/capture",
            exclude: ["RESULTS.md", "last-run.txt", "instructions-last-run.txt", "run.sh", "instructions.sh", "make_frame.py", "callgrind_calls.py"],
            sources: ["EncodeBench.swift"]),
        // A writer process the spool's crash and two-process tests launch and kill.
        .executableTarget(
            name: "spool-stress",
            dependencies: [
                "Spool",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "Uplink",
            dependencies: [
                "CCurl", "Basics", "Config",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Bundles carried on a USB stick when the link is gone: sealed for the
        // hub (HPKE), signed by the station, with receipts signed by the hub.
        .target(
            name: "Sneakernet",
            dependencies: ["Basics", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Hub",
            dependencies: [
                "Basics", "Recompression", "Sneakernet",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "Diagnostics",
            dependencies: [
                "Basics", "Config", "ConfigFile", "Capture", "Imaging", "Spool", "Uplink", "StationAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The daemon's wire: control API types and client, the notify record.
        // Diagnostics reads a running daemon through it without linking the daemon.
        .target(
            name: "StationAPI",
            dependencies: ["Basics", "Config", "Capture"]),
        .target(
            name: "Station",
            dependencies: [
                "Basics", "Config", "Capture", "Imaging", "Spool", "Uplink", "StationAPI", "Dicom", "Recompression", "Sneakernet",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [
                .embedInCode("Kiosk/kiosk.html"), .embedInCode("Kiosk/kiosk.css"), .embedInCode("Kiosk/kiosk.js"),
            ]),
        // Test and development support: an in-memory backend with a
        // synthetic camera, and a daemon that runs on it.
        .target(
            name: "StationDemo",
            dependencies: [
                "Station", "Imaging", "Capture",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "telestation-demo-station",
            dependencies: [
                "Basics", "Station", "StationDemo", "Config", "ConfigFile", "JournalLog",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/telestation-demo-station"),
        .executableTarget(
            name: "telestation",
            dependencies: [
                "Basics", "Config", "ConfigFile", "JournalLog", "Station", "StationAPI", "Diagnostics", "Spool", "Uplink", "Capture", "Dicom", "HubCommand", "CMalloc", "Sneakernet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The hub's command line, shared by telestation-hub and telestation
        // (which runs it when started as telestation-hub: one binary in the package).
        .target(
            name: "HubCommand",
            dependencies: [
                "Basics", "JournalLog", "Hub", "Sneakernet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .executableTarget(
            name: "telestation-hub",
            dependencies: ["HubCommand"]),

        // What the test modules share: the process runner and loopback sockets.
        .target(name: "TestSupport", dependencies: ["Imaging"], path: "Tests/TestSupport"),
        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "ConfigFile", "JournalLog"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        // The Dicom writer, judged by dciodvfy, dcmdump and pydicom.
        .testTarget(name: "DicomTests", dependencies: ["Dicom", "Imaging", "Basics", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        // JPEG XL recompression and rebuild, judged by libjxl's own cjxl/djxl.
        // Bundles: sealing, opening, and every way a stick can be damaged or tampered with.
        .testTarget(name: "SneakernetTests", dependencies: ["Sneakernet", "Basics", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "RecompressionTests", dependencies: ["Recompression", "Basics", "TestSupport"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "Imaging", "Config", "ConfigFile"]),
        .testTarget(name: "SpoolTests", dependencies: ["Spool", "Config", "Imaging", "TestSupport"]),
        .testTarget(
            name: "UplinkTests",
            dependencies: [
                "Uplink", "Hub", "Config", "Station", "Spool", "Recompression", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "HubTests",
            dependencies: ["Hub", "Basics", "Config", "Recompression", "Sneakernet", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "DiagnosticsTests", dependencies: ["Diagnostics", "Config", "ConfigFile", "StationAPI", "Hub", "TestSupport"]),
        .testTarget(
            name: "StationTests", dependencies: ["Basics", "Station", "Dicom", "StationAPI", "StationDemo", "Config", "ConfigFile", "TestSupport", "Hub", "Sneakernet", .product(name: "Crypto", package: "swift-crypto")],
            // The browser test is Python, run by `make test-kiosk`.
            exclude: ["kiosk"]),
        // Structured random inputs for every parser of untrusted bytes (`make fuzz`).
        .testTarget(
            name: "FuzzTests",
            dependencies: ["Recompression", "TestSupport", "Basics", "Config", "ConfigFile", "Imaging", "Dicom", "Uplink", "Hub", "Station", "StationAPI", "CTurboJPEG", "CCurl"]),
        // Runs the built executables as a user would.
        .testTarget(name: "CLITests", dependencies: ["Config", "TestSupport"]),
    ]
)
