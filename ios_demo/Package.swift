// swift-tools-version: 5.9
// The iOS demo of mobile-sdk: open this file in Xcode (File > Open...) to build the library, run
// the tests and run the demo on "My Mac"; for an iPhone / simulator generate the app project with
// `xcodegen` (project.yml, README.md).
import PackageDescription

let package = Package(
    name: "MobileSDKDemo",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "MobileSDKCore", targets: ["MobileSDKCore"]),
        .library(name: "MobileSDKImageIO", targets: ["MobileSDKImageIO"]),
        .executable(name: "MobileSDKDemo", targets: ["MobileSDKDemo"]),
    ],
    // CryptoKit's API on Linux (SHA-256 of the exported files); on Apple platforms CryptoKit itself.
    dependencies: [.package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0")],
    targets: [
        // Foundation (+ CryptoKit): manifest, preprocessing, tokenizer, scoring (mirrors android_demo/core).
        .target(name: "MobileSDKCore", dependencies: [
            .product(name: "Crypto", package: "swift-crypto", condition: .when(platforms: [.linux])),
        ]),
        // ImageIO / CoreGraphics decoding into the core's RawImage (platform code, kept apart).
        .target(name: "MobileSDKImageIO", dependencies: ["MobileSDKCore"]),
        // The SwiftUI app with its Core ML backend; Resources/ is filled by sync_assets.sh and
        // copied as it is (so `swift build` / `swift test` never need Xcode's Core ML compiler):
        // run from the package, the app compiles the .mlpackage files on first launch; the iOS app
        // target (App/project.yml) compiles them at build time.
        .executableTarget(
            name: "MobileSDKDemo",
            dependencies: ["MobileSDKCore", "MobileSDKImageIO"],
            resources: [.copy("Resources")]
        ),
        // Replays ../tests/golden (read in place through #filePath; see README.md).
        .testTarget(name: "MobileSDKCoreTests", dependencies: ["MobileSDKCore", "MobileSDKImageIO"]),
    ]
)
