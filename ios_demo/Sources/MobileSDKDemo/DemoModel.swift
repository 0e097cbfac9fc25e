#if canImport(SwiftUI) && canImport(CoreML)
import CoreGraphics
import Foundation
import ImageIO
import MobileSDKCore
import PhotosUI
import SwiftUI

/// One editable zero-shot class: the label shown and the prompt that is embedded.
struct LabelRow: Identifiable, Equatable {
    let id = UUID()
    var label: String
    var prompt: String
}

struct ClassScore: Identifiable {
    let id: Int
    let label: String
    let probability: Double
    let score: Double
}

struct SearchHit: Identifiable {
    let id: Int
    let name: String
    let thumbnail: CGImage?
    let score: Double
}

/// Milliseconds of the last run of each stage (nil: not run yet).
struct Latency {
    var decodeMs: Double?
    var preprocessMs: Double?
    var imageMs: Double?
    var textMs: Double?
}

struct SummaryRow: Identifiable {
    var id: String { name }
    let name: String
    let value: String
}

struct GalleryItem {
    let name: String
    let url: URL
    let thumbnail: CGImage?
    var embedding: [Double]?
}

/// The app state: loads the engine, runs zero-shot classification (against prompts the text tower
/// embeds, or against the export's label bank with the image tower alone) and text-to-image
/// search, and turns every failure into a message (missing model, unknown manifest version,
/// undecodable image, an export with neither a text tower nor a label bank).
@MainActor
final class DemoModel: ObservableObject {
    @Published var loadError: String?
    @Published var isLoading = false
    @Published var modelSummary: [SummaryRow] = []
    @Published var taskName = "" {
        didSet {
            if taskName != oldValue {
                resetLabels()
            }
        }
    }
    @Published var rows: [LabelRow] = []
    /// Classify against the export's label bank instead of the prompts (offered when both exist;
    /// the only way when the export ships no text tower).
    @Published var useLabelBank = false
    @Published var classifyError: String?
    @Published var inputPreview: CGImage?
    @Published var results: [ClassScore] = []
    @Published var classifyLatency = Latency()
    @Published var query = "a red circle"
    @Published var hits: [SearchHit] = []
    @Published var searchError: String?
    @Published var searchLatency = Latency()
    @Published var busy = false

    private(set) var engine: Engine?
    private var gallery: [GalleryItem] = []
    private var galleryEmbedded = false
    private var promptCache: [String: [Double]] = [:]
    private var lastImageEmbedding: [Double]?
    private let locator = ResourceLocator.app

    var taskNames: [String] { engine?.manifest.taskNames ?? [] }
    /// The text tower is there: prompts (and search) work.
    var promptsAvailable: Bool { engine?.hasTextTower ?? false }
    var labelBankAvailable: Bool { engine?.labelBank != nil }
    /// Whether classification goes through the label bank now.
    var usingLabelBank: Bool { labelBankAvailable && (useLabelBank || !promptsAvailable) }
    var bankClasses: [String] { engine?.labelBank?.classes ?? [] }
    /// How the bank's classes were embedded, for the Classify tab.
    var bankNote: String {
        let templates = engine?.labelBank?.templates ?? []
        let from = templates.isEmpty ? "" : " from the prompts " + templates.joined(separator: " | ")
        return "Class embeddings made at export\(from); the image tower alone classifies."
    }

    static func message(_ error: Error) -> String {
        if let e = error as? SDKError {
            return e.message
        }
        return error.localizedDescription
    }

    func load() async {
        guard engine == nil, !isLoading else { return }
        isLoading = true
        defer { isLoading = false }
        do {
            let engine = try await Engine.load(locator)
            self.engine = engine
            let m = engine.manifest
            let bank: String
            if let b = engine.labelBank {
                bank = "\(b.count) classes" + (b.templates.isEmpty ? "" : ", templates \(b.templates)")
            } else {
                bank = engine.labelBankError.map { "not loaded: \($0)" } ?? "none"
            }
            modelSummary = [
                SummaryRow(name: "Model", value: m.model.name ?? "?"),
                SummaryRow(name: "SDK", value: m.sdkVersion ?? "?"),
                SummaryRow(name: "Precision", value: "Core ML \(engine.precision)"),
                SummaryRow(name: "Image tower", value: "\(engine.image.artifact.file) (\(engine.image.artifact.bytes) bytes)"),
                SummaryRow(name: "Text tower", value: engine.text.map { "\($0.artifact.file) (\($0.artifact.bytes) bytes)" }
                    ?? "none (the export ships the image tower only)"),
                SummaryRow(name: "Image input", value: engine.image.imageInput ? "image \(m.model.preprocessing.imageSize)px" : "\(engine.image.input)"),
                SummaryRow(name: "Text input", value: engine.text.map { "\($0.input)" } ?? "-"),
                SummaryRow(name: "Tokenizer", value: engine.tokenizer.map { "\($0.kind), \($0.contextLength) tokens" } ?? "-"),
                SummaryRow(name: "Label bank", value: bank),
                SummaryRow(name: "Embedding", value: "\(m.model.embedDim) floats, logit scale \(m.model.logitScale)"),
                SummaryRow(name: "Load", value: String(format: "%.2f s", engine.loadSeconds)),
            ]
            gallery = locator.galleryImages().map { url in
                GalleryItem(name: url.lastPathComponent, url: url, thumbnail: DemoModel.thumbnail(url), embedding: nil)
            }
            useLabelBank = !engine.hasTextTower && engine.labelBank != nil
            if engine.hasTextTower {
                taskName = try m.defaultTask()
                resetLabels()
            } else if engine.labelBank == nil {
                classifyError = LabelBank.noZeroShotError(m).message
            }
        } catch {
            loadError = DemoModel.message(error)
        }
    }

    // MARK: labels

    func resetLabels() {
        guard let task = engine?.manifest.model.tasks[taskName] else {
            rows = []
            return
        }
        rows = zip(task.labels, task.prompts).map { LabelRow(label: $0.0, prompt: $0.1) }
        results = []
    }

    func addLabel() {
        rows.append(LabelRow(label: "new label", prompt: "a new label"))
    }

    // MARK: zero-shot classification

    func classify(item: PhotosPickerItem) async {
        let data: Data?
        do {
            data = try await item.loadTransferable(type: Data.self)
        } catch {
            classifyError = "cannot load the picked photo: \(error.localizedDescription)"
            return
        }
        guard let data = data else {
            classifyError = "the picked item has no image data"
            return
        }
        await classify(data: data, source: "the picked photo")
    }

    func classify(data: Data, source: String) async {
        guard let engine = engine else {
            classifyError = loadError ?? "the model is not loaded yet"
            return
        }
        guard engine.hasTextTower || engine.labelBank != nil else {
            classifyError = LabelBank.noZeroShotError(engine.manifest).message
            return
        }
        await runClassification { try await engine.embedImage(data: data, source: source) }
    }

    func classify(cgImage: CGImage, orientation: Int) async {
        guard let engine = engine else {
            classifyError = loadError ?? "the model is not loaded yet"
            return
        }
        guard engine.hasTextTower || engine.labelBank != nil else {
            classifyError = LabelBank.noZeroShotError(engine.manifest).message
            return
        }
        await runClassification { try await engine.embedImage(cgImage: cgImage, orientation: orientation) }
    }

    private func runClassification(_ embed: () async throws -> Engine.ImageEmbedding) async {
        busy = true
        defer { busy = false }
        classifyError = nil
        do {
            let e = try await embed()
            lastImageEmbedding = e.embedding
            inputPreview = DemoModel.image(rgb: e.pixels, size: engine?.imageSize ?? 0)
            classifyLatency.decodeMs = e.decodeMs
            classifyLatency.preprocessMs = e.preprocessMs
            classifyLatency.imageMs = e.inferenceMs
            try await score()
        } catch {
            classifyError = DemoModel.message(error)
            results = []
            inputPreview = nil
            lastImageEmbedding = nil
        }
    }

    /// Scores the last image against the current labels (again after they were edited), or against
    /// the label bank's classes.
    func score() async throws {
        guard let engine = engine, let image = lastImageEmbedding else { return }
        if usingLabelBank, let bank = engine.labelBank {
            let scores = try bank.scores(image: image, logitScale: engine.manifest.model.logitScale)
            let probs = Scoring.softmax(scores)
            classifyLatency.textMs = nil  // no text tower runs
            results = Scoring.ranking(scores).map { i in
                ClassScore(id: i, label: bank.classes[i], probability: probs[i], score: scores[i])
            }
            return
        }
        guard engine.hasTextTower else {
            throw LabelBank.noZeroShotError(engine.manifest)
        }
        let labels = rows.map { $0.label }
        let prompts = rows.map { $0.prompt }
        guard !prompts.isEmpty else {
            throw SDKError(.invalidArgument, "add at least one label")
        }
        let missing = prompts.filter { promptCache[$0] == nil }
        if !missing.isEmpty {
            let (embeddings, ms) = try await engine.embedTexts(missing, for: "classifying with your own prompts")
            for (p, e) in zip(missing, embeddings) {
                promptCache[p] = e
            }
            classifyLatency.textMs = ms
        }
        let texts = prompts.compactMap { promptCache[$0] }
        let scores = try Scoring.scores([image], texts, logitScale: engine.manifest.model.logitScale)[0]
        let probs = Scoring.softmax(scores)
        results = Scoring.ranking(scores).map { i in
            ClassScore(id: i, label: labels[i], probability: probs[i], score: scores[i])
        }
    }

    func rescore() async {
        do {
            classifyError = nil
            try await score()
        } catch {
            classifyError = DemoModel.message(error)
        }
    }

    // MARK: text-to-image search

    func search() async {
        guard let engine = engine else {
            searchError = loadError ?? "the model is not loaded yet"
            return
        }
        guard engine.hasTextTower else {  // before the gallery is embedded for nothing
            searchError = LabelBank.noTextTowerError("text-to-image search", manifest: engine.manifest).message
            return
        }
        busy = true
        defer { busy = false }
        searchError = nil
        do {
            if !galleryEmbedded {
                var failures: [String] = []
                for i in gallery.indices {
                    do {
                        let data = try Data(contentsOf: gallery[i].url)
                        let e = try await engine.embedImage(data: data, source: gallery[i].name)
                        gallery[i].embedding = e.embedding
                        searchLatency.decodeMs = e.decodeMs
                        searchLatency.preprocessMs = e.preprocessMs
                        searchLatency.imageMs = e.inferenceMs
                    } catch {
                        failures.append(DemoModel.message(error))
                    }
                }
                galleryEmbedded = true
                if !failures.isEmpty {
                    searchError = failures.joined(separator: "\n")
                }
            }
            let items = gallery.filter { $0.embedding != nil }
            guard !items.isEmpty else {
                throw SDKError(.modelFile, "no gallery images in the app; run ios_demo/sync_assets.sh and rebuild")
            }
            let (q, ms) = try await engine.embedTexts([query], for: "text-to-image search")
            searchLatency.textMs = ms
            let scores = try Scoring.scores(q, items.compactMap { $0.embedding },
                                            logitScale: engine.manifest.model.logitScale)[0]
            hits = Scoring.ranking(scores).map { i in
                SearchHit(id: i, name: items[i].name, thumbnail: items[i].thumbnail, score: scores[i])
            }
        } catch {
            searchError = DemoModel.message(error)
            hits = []
        }
    }

    // MARK: images for display

    static func thumbnail(_ url: URL) -> CGImage? {
        guard let src = CGImageSourceCreateWithURL(url as CFURL, nil) else { return nil }
        let options: [CFString: Any] = [
            kCGImageSourceCreateThumbnailFromImageAlways: true,
            kCGImageSourceCreateThumbnailWithTransform: true,
            kCGImageSourceThumbnailMaxPixelSize: 256,
        ]
        return CGImageSourceCreateThumbnailAtIndex(src, 0, options as CFDictionary)
    }

    /// uint8 RGB HWC -> CGImage (the model input, shown enlarged).
    static func image(rgb: [UInt8], size: Int) -> CGImage? {
        guard size > 0, rgb.count == size * size * 3, let space = CGColorSpace(name: CGColorSpace.sRGB),
              let provider = CGDataProvider(data: Data(rgb) as CFData) else { return nil }
        return CGImage(width: size, height: size, bitsPerComponent: 8, bitsPerPixel: 24, bytesPerRow: size * 3,
                       space: space, bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.none.rawValue),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)
    }
}
#endif
