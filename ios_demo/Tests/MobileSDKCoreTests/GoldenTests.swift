import Foundation
import MobileSDKCore
import XCTest
#if canImport(ImageIO) && canImport(CoreGraphics)
import MobileSDKImageIO
#endif

/// Replays every golden folder (tests/golden: word tokenizer; tests/golden_bpe: CLIP BPE) exactly:
/// the same pixels byte for byte from the sample PNGs, the same ids from the texts and prompts
/// through the app's tokenizer factory, and from every runtime's embeddings the same rankings, with
/// scores and probabilities within 1e-6; the same for the label bank (tests/golden_bpe has one).
final class GoldenTests: XCTestCase {
    func testManifestReadsAndMatchesGolden() throws {
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let golden = try GoldenFiles.golden(in: folder)
            XCTAssertEqual(manifest.schemaVersion, Manifest.supportedSchemaVersion)
            XCTAssertEqual(manifest.golden, GoldenFiles.goldenFile)
            XCTAssertEqual(golden.schemaVersion, 1)
            XCTAssertEqual(golden.logitScale, manifest.model.logitScale)
            XCTAssertNotNil(manifest.model.tasks[golden.prompts.task])
            if folder == GoldenFiles.folder {  // the shipped model's export has the app's Core ML pair
                XCTAssertFalse(try manifest.defaultPrecision(platform: "coreml").isEmpty)
            }
            XCTAssertEqual(try manifest.defaultTask(), "zeroshot_color")
            XCTAssertNoThrow(try manifest.model.preprocessing.requireSupported(), folder.path)
        }
    }

    /// The app's default precision is the one the manifest marks `"default": true`, wherever the
    /// mark is (moved here from LiteRT int8_cpu to int8), not a rule of the app's own.
    func testTheManifestsDefaultMarkDecides() throws {
        let m = try GoldenFiles.manifest()
        XCTAssertEqual(m.find(platform: "tflite", tower: "image", precision: "int8_cpu")?.isDefault, true)
        XCTAssertEqual(try m.defaultPrecision(platform: "tflite"), "int8_cpu")
        var obj = try GoldenFiles.manifestObject()
        var arts = try XCTUnwrap(obj["artifacts"] as? [[String: Any]])
        for i in arts.indices where arts[i]["platform"] as? String == "tflite" {
            arts[i]["default"] = (arts[i]["precision"] as? String) == "int8"
        }
        obj["artifacts"] = arts
        let moved = try Manifest.parse(try JSONSerialization.data(withJSONObject: obj), source: "moved")
        XCTAssertEqual(try moved.defaultPrecision(platform: "tflite"), "int8")
    }

    func testTokenizerMatchesManifest() throws {
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let tok = try Tokenizers.fromManifest(manifest, folder: folder)
            XCTAssertEqual(tok.kind, manifest.model.tokenizer.tokenizerKind)
            XCTAssertEqual(tok.contextLength, manifest.model.tokenizer.contextLength)
            if let word = tok as? WordTokenizer {
                XCTAssertEqual(word.vocabSize, manifest.model.tokenizer.vocabSize)
            } else if let bpe = tok as? ClipBpeTokenizer {
                XCTAssertEqual(bpe.vocabSize, manifest.model.tokenizer.vocabSize)
                XCTAssertEqual([Int(bpe.sotId), Int(bpe.eotId)], [manifest.model.tokenizer.sotId, manifest.model.tokenizer.eotId])
            } else {
                XCTFail("unexpected tokenizer \(tok.kind)")
            }
        }
    }

    func testTokenizerReplaysGoldenIds() throws {
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let golden = try GoldenFiles.golden(in: folder)
            let tok = try Tokenizers.fromManifest(manifest, folder: folder)
            XCTAssertFalse(golden.texts.isEmpty)
            for t in golden.texts {
                XCTAssertEqual(tok.encode(t.text), t.ids, "\(tok.kind) ids of \"\(t.text)\"")
            }
            XCTAssertEqual(golden.prompts.texts, manifest.model.tasks[golden.prompts.task]?.prompts)
            for (text, ids) in zip(golden.prompts.texts, golden.prompts.ids) {
                XCTAssertEqual(tok.encode(text), ids, "\(tok.kind) ids of prompt \"\(text)\"")
            }
        }
    }

    func testPreprocessingReplaysGoldenPixels() throws {
        #if canImport(ImageIO) && canImport(CoreGraphics)
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let golden = try GoldenFiles.golden(in: folder)
            XCTAssertEqual(Set(golden.images.map { $0.mode }), ["RGB", "RGBA", "L", "P", "I;16"])
            for img in golden.images {
                let data = try Data(contentsOf: GoldenFiles.url(img.file, in: folder))
                XCTAssertEqual(Checksum.sha256Hex(of: data), img.pngSha256, "\(img.file) differs from the one golden.json was made from")
                let raw = try ImageDecoder.decode(data: data, source: img.file)
                XCTAssertEqual([raw.width, raw.height], img.size, img.file)
                let pixels = try Preprocess.preprocess(raw, spec: manifest.model.preprocessing)
                XCTAssertEqual(pixels.count, img.pixels.count, img.file)
                let wrong = zip(pixels, img.pixels).enumerated().filter { $0.element.0 != $0.element.1 }
                XCTAssertTrue(wrong.isEmpty, "\(img.file) (\(img.mode), decoded as \(raw.mode)): \(wrong.count) bytes differ, "
                    + "first at \(wrong.first.map { "\($0.offset): \($0.element.0) != \($0.element.1)" } ?? "-")")
                XCTAssertEqual(Checksum.sha256Hex(of: pixels), img.pixelsSha256, img.file)
            }
        }
        #else
        throw XCTSkip("decoding needs ImageIO (Apple platforms)")
        #endif
    }

    func testScoringReplaysGoldenResults() throws {
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let golden = try GoldenFiles.golden(in: folder)
            let scale = manifest.model.logitScale
            XCTAssertNotNil(golden.results["eager"])
            for (name, r) in golden.results.sorted(by: { $0.key < $1.key }) {
                // Zero-shot: every image against the task's prompts.
                let zs = try Scoring.scores(r.imageEmbeddings, r.promptEmbeddings, logitScale: scale)
                XCTAssertEqual(zs.count, r.zeroshotScores.count, name)
                for (i, row) in zs.enumerated() {
                    XCTAssertEqual(Scoring.ranking(row), r.zeroshotRanking[i], "\(name) zero-shot ranking of image \(i)")
                    let probs = Scoring.softmax(row)
                    for j in row.indices {
                        XCTAssertEqual(row[j], r.zeroshotScores[i][j], accuracy: 1e-6, "\(name) score [\(i)][\(j)]")
                        XCTAssertEqual(probs[j], r.zeroshotProbs[i][j], accuracy: 1e-6, "\(name) prob [\(i)][\(j)]")
                    }
                }
                // Search: every text ranks the images (scores(images, texts) transposed).
                let search = Scoring.transpose(try Scoring.scores(r.imageEmbeddings, r.textEmbeddings, logitScale: scale))
                XCTAssertEqual(search.count, golden.texts.count, name)
                for (t, row) in search.enumerated() {
                    XCTAssertEqual(Scoring.ranking(row), r.searchRanking[t], "\(name) search ranking of text \(t)")
                }
            }
        }
    }

    func testLabelBankReplaysGoldenScores() throws {
        var replayed = 0
        for folder in GoldenFiles.folders {
            let manifest = try GoldenFiles.manifest(in: folder)
            let golden = try GoldenFiles.golden(in: folder)
            XCTAssertEqual(manifest.labelBank != nil, golden.labelBank != nil,
                           "\(folder.path): golden.json has a label_bank block iff the manifest has a label bank")
            guard let spec = manifest.labelBank, let block = golden.labelBank else { continue }
            let bank = try LabelBank.fromManifest(manifest, folder: folder)
            XCTAssertEqual(block.file, spec.file)
            XCTAssertEqual(block.sha256, spec.sha256)
            XCTAssertEqual(bank.classes, block.classes)
            XCTAssertEqual(bank.count, spec.classes)
            XCTAssertEqual(bank.embedDim, manifest.model.embedDim)
            XCTAssertEqual(Set(block.results.keys), Set(golden.results.keys))
            for (name, r) in golden.results.sorted(by: { $0.key < $1.key }) {
                let want = try XCTUnwrap(block.results[name], name)
                XCTAssertEqual(want.scores.count, golden.images.count, name)
                for (i, image) in r.imageEmbeddings.enumerated() {
                    let scores = try bank.scores(image: image, logitScale: manifest.model.logitScale)
                    XCTAssertEqual(Scoring.ranking(scores), want.ranking[i], "\(name) label bank ranking of image \(i)")
                    let probs = Scoring.softmax(scores)
                    for j in scores.indices {
                        XCTAssertEqual(scores[j], want.scores[i][j], accuracy: 1e-6, "\(name) bank score [\(i)][\(j)]")
                        XCTAssertEqual(probs[j], want.probs[i][j], accuracy: 1e-6, "\(name) bank prob [\(i)][\(j)]")
                    }
                }
            }
            replayed += 1
        }
        if ProcessInfo.processInfo.environment["MOBILE_SDK_GOLDEN_DIR"] == nil {
            XCTAssertGreaterThan(replayed, 0, "tests/golden_bpe has a label bank")
        }
    }
}
