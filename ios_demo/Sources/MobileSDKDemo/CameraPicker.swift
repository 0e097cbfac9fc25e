#if os(iOS)
import SwiftUI
import UIKit

/// The system camera as a SwiftUI sheet; hands back the photo as a UIImage.
struct CameraPicker: UIViewControllerRepresentable {
    static var isAvailable: Bool { UIImagePickerController.isSourceTypeAvailable(.camera) }

    let onImage: (UIImage) -> Void
    @Environment(\.dismiss) private var dismiss

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ uiViewController: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator {
        Coordinator(self)
    }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let parent: CameraPicker

        init(_ parent: CameraPicker) {
            self.parent = parent
        }

        func imagePickerController(_ picker: UIImagePickerController,
                                   didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
            if let image = info[.originalImage] as? UIImage {
                parent.onImage(image)
            }
            parent.dismiss()
        }

        func imagePickerControllerDidCancel(_ picker: UIImagePickerController) {
            parent.dismiss()
        }
    }
}

extension UIImage.Orientation {
    /// The EXIF orientation (1...8) of a UIImage orientation.
    var exifOrientation: Int {
        switch self {
        case .up: return 1
        case .upMirrored: return 2
        case .down: return 3
        case .downMirrored: return 4
        case .leftMirrored: return 5
        case .right: return 6
        case .rightMirrored: return 7
        case .left: return 8
        @unknown default: return 1
        }
    }
}

/// The camera button of the classify screen (iOS only; see CameraButton's other half below).
struct CameraButton: View {
    @EnvironmentObject var model: DemoModel
    @State private var showCamera = false

    var body: some View {
        if CameraPicker.isAvailable {
            Button {
                showCamera = true
            } label: {
                Label("Camera", systemImage: "camera")
            }
            .sheet(isPresented: $showCamera) {
                CameraPicker { image in
                    let cg = image.cgImage
                    let orientation = image.imageOrientation.exifOrientation
                    Task { @MainActor in
                        guard let cg = cg else {
                            model.classifyError = "the camera returned no bitmap"
                            return
                        }
                        await model.classify(cgImage: cg, orientation: orientation)
                    }
                }
            }
        }
    }
}
#elseif canImport(SwiftUI) && canImport(CoreML)
import SwiftUI

/// No camera on macOS: photos come from the picker.
struct CameraButton: View {
    var body: some View {
        EmptyView()
    }
}
#endif
