#if canImport(CoreML)
import CoreGraphics
import CoreML
import Foundation
import MobileSDKCore
import MobileSDKImageIO

/// The model as the app runs it: the bundled manifest, its tokenizer and the two Core ML towers of
/// the default (palettized) precision. Its async methods run off the main actor; it holds no
/// mutable state, so sharing it between tasks is safe.
final class Engine: @unchecked Sendable {
    let manifest: Manifest
    let tokenizer: any Tokenizer
    let precision: String
    let image: CoreMLTower
    let text: CoreMLTower
    /// Seconds to load (and, where the build did not, compile) both models.
    let loadSeconds: Double

    var imageSize: Int { manifest.model.preprocessing.imageSize }

    private init(manifest: Manifest, tokenizer: any Tokenizer, precision: String, image: CoreMLTower, text: CoreMLTower,
                 loadSeconds: Double) {
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.precision = precision
        self.image = image
        self.text = text
        self.loadSeconds = loadSeconds
    }

    static func load(_ locator: ResourceLocator) async throws -> Engine {
        let start = Engine.now()
        let manifest = try locator.manifest()
        try manifest.model.preprocessing.requireSupported()  // a resize rule the app lacks fails here, named
        let tokenizer = try locator.tokenizer(for: manifest)
        let precision = try manifest.defaultPrecision(platform: "coreml")
        var towers: [CoreMLTower] = []
        for tower in Manifest.towers {
            guard let artifact = manifest.find(platform: "coreml", tower: tower, precision: precision) else {
                throw SDKError(.modelFile, "the manifest has no Core ML \(tower) tower at precision \(precision)")
            }
            let found = try locator.model(for: artifact)
            var url = found.url
            if !found.compiled {
                do {
                    url = try await MLModel.compileModel(at: found.url)
                } catch {
                    throw SDKError(.backend, "Core ML cannot compile \(artifact.file): \(error.localizedDescription)")
                }
            }
            towers.append(try CoreMLTower(artifact: artifact, modelURL: url, embedDim: manifest.model.embedDim))
        }
        let imageSpec = towers[0].input
        if !towers[0].imageInput && imageSpec.shape != [1, 3, manifest.model.preprocessing.imageSize,
                                                        manifest.model.preprocessing.imageSize] {
            throw SDKError(.manifest, "image input \(imageSpec) does not match image_size "
                + "\(manifest.model.preprocessing.imageSize)")
        }
        return Engine(manifest: manifest, tokenizer: tokenizer, precision: precision, image: towers[0],
                      text: towers[1], loadSeconds: (Engine.now() - start) / 1000)
    }

    /// Milliseconds on a monotonic clock.
    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1_000_000
    }

    struct ImageEmbedding {
        let embedding: [Double]
        /// What the model saw: uint8 HWC (image_size, image_size, 3).
        let pixels: [UInt8]
        let decodeMs: Double
        let preprocessMs: Double
        let inferenceMs: Double
    }

    /// Encoded image bytes (a picked photo, a gallery file) -> embedding.
    func embedImage(data: Data, source: String) async throws -> ImageEmbedding {
        let t0 = Engine.now()
        let raw = try ImageDecoder.decode(data: data, source: source)
        return try embed(raw, decodeMs: Engine.now() - t0)
    }

    /// A camera frame with its EXIF orientation -> embedding.
    func embedImage(cgImage: CGImage, orientation: Int) async throws -> ImageEmbedding {
        let t0 = Engine.now()
        let raw = try ImageDecoder.decode(cgImage: cgImage, orientation: orientation, source: "camera image")
        return try embed(raw, decodeMs: Engine.now() - t0)
    }

    private func embed(_ raw: RawImage, decodeMs: Double) throws -> ImageEmbedding {
        let t0 = Engine.now()
        let pixels = try Preprocess.preprocess(raw, spec: manifest.model.preprocessing)
        let t1 = Engine.now()
        let out = try image.encodeImage(hwc: pixels, size: imageSize)
        let t2 = Engine.now()
        return ImageEmbedding(embedding: Scoring.toDouble(out), pixels: pixels, decodeMs: decodeMs,
                              preprocessMs: t1 - t0, inferenceMs: t2 - t1)
    }

    /// Texts -> embeddings, and the mean milliseconds per text (tokenizer + model).
    func embedTexts(_ texts: [String]) async throws -> (embeddings: [[Double]], msPerText: Double) {
        let t0 = Engine.now()
        var out: [[Double]] = []
        for t in texts {
            let embedding = try text.encodeText(ids: tokenizer.encode(t))
            out.append(Scoring.toDouble(embedding))
        }
        return (out, texts.isEmpty ? 0 : (Engine.now() - t0) / Double(texts.count))
    }
}
#endif
