#if canImport(CoreML)
import CoreGraphics
import CoreML
import Foundation
import MobileSDKCore
import MobileSDKImageIO

/// The model as the app runs it: the bundled manifest, the Core ML towers of the default
/// (palettized) precision, the tokenizer (when the export ships a text tower) and the label bank
/// (when the export has one: zero-shot with the image tower alone). Its async methods run off the
/// main actor; it holds no mutable state, so sharing it between tasks is safe.
final class Engine: @unchecked Sendable {
    let manifest: Manifest
    /// nil when the export ships no text tower.
    let tokenizer: (any Tokenizer)?
    let precision: String
    let image: CoreMLTower
    /// nil when the export ships no text tower at this precision (zero-shot then goes through the label bank).
    let text: CoreMLTower?
    /// The export's label bank (label_bank.json), or nil.
    let labelBank: LabelBank?
    /// Why the export's label bank did not load (the text tower still classifies with prompts), or nil.
    let labelBankError: String?
    /// Seconds to load (and, where the build did not, compile) the models.
    let loadSeconds: Double

    var imageSize: Int { manifest.model.preprocessing.imageSize }

    /// Whether text can be embedded (prompts, search queries).
    var hasTextTower: Bool { text != nil && tokenizer != nil }

    private init(manifest: Manifest, tokenizer: (any Tokenizer)?, precision: String, image: CoreMLTower,
                 text: CoreMLTower?, labelBank: LabelBank?, labelBankError: String?, loadSeconds: Double) {
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.precision = precision
        self.image = image
        self.text = text
        self.labelBank = labelBank
        self.labelBankError = labelBankError
        self.loadSeconds = loadSeconds
    }

    static func load(_ locator: ResourceLocator) async throws -> Engine {
        let start = Engine.now()
        let manifest = try locator.manifest()
        try manifest.model.preprocessing.requireSupported()  // a resize rule the app lacks fails here, named
        let precision = try manifest.defaultPrecision(platform: "coreml")
        func tower(_ artifact: Manifest.Artifact) async throws -> CoreMLTower {
            let found = try locator.model(for: artifact)
            var url = found.url
            if !found.compiled {
                do {
                    url = try await MLModel.compileModel(at: found.url)
                } catch {
                    throw SDKError(.backend, "Core ML cannot compile \(artifact.file): \(error.localizedDescription)")
                }
            }
            return try CoreMLTower(artifact: artifact, modelURL: url, embedDim: manifest.model.embedDim)
        }
        guard let imageArtifact = manifest.find(platform: "coreml", tower: "image", precision: precision) else {
            throw SDKError(.modelFile, "the manifest has no Core ML image tower at precision \(precision)")
        }
        let image = try await tower(imageArtifact)
        let imageSpec = image.input
        if !image.imageInput && imageSpec.shape != [1, 3, manifest.model.preprocessing.imageSize,
                                                    manifest.model.preprocessing.imageSize] {
            throw SDKError(.manifest, "image input \(imageSpec) does not match image_size "
                + "\(manifest.model.preprocessing.imageSize)")
        }
        // The text tower and its tokenizer only when the export ships them (`--tower image` does not).
        var text: CoreMLTower?
        var tokenizer: (any Tokenizer)?
        if let textArtifact = manifest.find(platform: "coreml", tower: "text", precision: precision) {
            tokenizer = try locator.tokenizer(for: manifest)
            text = try await tower(textArtifact)
        }
        var bank: LabelBank?
        var bankError: String?
        if manifest.labelBank != nil {
            do {
                bank = try locator.labelBank(for: manifest)
            } catch {
                if text == nil {
                    throw error  // no text tower either: nothing to classify with
                }
                bankError = (error as? SDKError)?.message ?? error.localizedDescription
            }
        }
        return Engine(manifest: manifest, tokenizer: tokenizer, precision: precision, image: image, text: text,
                      labelBank: bank, labelBankError: bankError, loadSeconds: (Engine.now() - start) / 1000)
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

    /// Texts -> embeddings, and the mean milliseconds per text (tokenizer + model); a clear error
    /// without a text tower (`what` names the use: "classifying with your own prompts", ...).
    func embedTexts(_ texts: [String], for what: String = "embedding text") async throws
        -> (embeddings: [[Double]], msPerText: Double) {
        guard let text = text, let tokenizer = tokenizer else {
            throw LabelBank.noTextTowerError(what, manifest: manifest)
        }
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
