#if canImport(SwiftUI) && canImport(CoreML)
import SwiftUI

@main
struct MobileSDKDemoApp: App {
    @StateObject private var model = DemoModel()

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
                .task {
                    await model.load()
                }
        }
    }
}
#endif
