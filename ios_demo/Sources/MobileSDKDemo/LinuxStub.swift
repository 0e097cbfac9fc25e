#if !(canImport(SwiftUI) && canImport(CoreML))
/// Where there is no SwiftUI / Core ML (a Linux toolchain), the executable only says so, so that
/// `swift build` / `swift test` of the core still work there.
@main
enum MobileSDKDemoStub {
    static func main() {
        print("MobileSDKDemo needs SwiftUI and Core ML (iOS 17 / macOS 14); MobileSDKCore builds and tests anywhere.")
    }
}
#endif
