import Foundation
import MobileSDKCore
import XCTest
#if canImport(ImageIO) && canImport(CoreGraphics)
import MobileSDKImageIO
#endif

/// Replays every golden folder (tests/golden: word tokenizer; tests/golden_bpe: CLIP BPE) exactly:
/// the same pixels byte for byte from the sample PNGs, the same ids from the texts and prompts
/// through the app's tokenizer factory, and from every runtime's embeddings the same rankings, with
/// scores and probabilities within 1e-6.
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
                XCTAssertEqual(SHA256.hex(of: data), img.pngSha256, "\(img.file) differs from the one golden.json was made from")
                let raw = try ImageDecoder.decode(data: data, source: img.file)
                XCTAssertEqual([raw.width, raw.height], img.size, img.file)
                let pixels = try Preprocess.preprocess(raw, spec: manifest.model.preprocessing)
                XCTAssertEqual(pixels.count, img.pixels.count, img.file)
                let wrong = zip(pixels, img.pixels).enumerated().filter { $0.element.0 != $0.element.1 }
                XCTAssertTrue(wrong.isEmpty, "\(img.file) (\(img.mode), decoded as \(raw.mode)): \(wrong.count) bytes differ, "
                    + "first at \(wrong.first.map { "\($0.offset): \($0.element.0) != \($0.element.1)" } ?? "-")")
                XCTAssertEqual(SHA256.hex(of: pixels), img.pixelsSha256, img.file)
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
}
