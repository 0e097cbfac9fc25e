import Foundation
import MobileSDKCore
import XCTest
#if canImport(ImageIO) && canImport(CoreGraphics)
import MobileSDKImageIO
#endif

/// The failures the app shows as messages: they must be clear SDKErrors, never crashes.
final class ErrorTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = try makeTemporaryFolder("mobile-sdk-ios", removedAfter: self)
    }

    /// The golden manifest as a JSON object, changed by `edit`, written to tmp/manifest.json.
    private func writeManifest(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        var obj = try GoldenFiles.manifestObject()
        edit(&obj)
        let url = tmp.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        return url
    }

    func testUnknownSchemaVersion() throws {
        let url = try writeManifest { $0["schema_version"] = 999 }
        assertSDKError(.manifest, containing: "schema_version 999 is not supported") {
            _ = try Manifest.load(url)
        }
        assertSDKError(.manifest, containing: "it was written by mobile-sdk ") {  // who wrote it, and what to do
            _ = try Manifest.load(url)
        }
        let older = try writeManifest { $0["schema_version"] = 0 }
        assertSDKError(.manifest, containing: "; re-export with a mobile-sdk that writes version 1") {
            _ = try Manifest.load(older)
        }
    }

    func testUnknownSchemaVersionEvenWhenTheRestChanged() throws {
        let url = try writeManifest { m in
            m["schema_version"] = 2
            m["model"] = "a future layout"
        }
        assertSDKError(.manifest, containing: "schema_version 2 is not supported") {
            _ = try Manifest.load(url)
        }
    }

    func testWrongSchemaAndBrokenManifests() throws {
        let wrong = try writeManifest { $0["schema"] = "something-else" }
        assertSDKError(.manifest, containing: "expected 'mobile-sdk-manifest'") { _ = try Manifest.load(wrong) }
        let lacking = try writeManifest { m in
            var model = m["model"] as? [String: Any] ?? [:]
            model.removeValue(forKey: "embed_dim")
            m["model"] = model
        }
        assertSDKError(.manifest, containing: "lacks 'embed_dim'") { _ = try Manifest.load(lacking) }
        let notJSON = tmp.appendingPathComponent("broken.json")
        try Data("{ not json".utf8).write(to: notJSON)
        assertSDKError(.manifest, containing: "not valid JSON") { _ = try Manifest.load(notJSON) }
        assertSDKError(.manifest, containing: "manifest not found") {
            _ = try Manifest.load(self.tmp.appendingPathComponent("nowhere/manifest.json"))
        }
    }

    func testMissingModelFile() throws {
        // tests/golden holds the manifest but not the exported models: every artifact is missing.
        let manifest = try GoldenFiles.manifest()
        let artifact = try XCTUnwrap(manifest.artifacts.first { $0.platform == "coreml" } ?? manifest.artifacts.first)
        assertSDKError(.modelFile, containing: "is missing") {
            _ = try Manifest.resolve(folder: self.tmp, artifact: artifact, checkSha256: false)
        }
        assertSDKError(.modelFile, containing: "is missing") {
            _ = try Manifest.load(GoldenFiles.url(GoldenFiles.manifestFile), checkFiles: true)
        }
        XCTAssertNoThrow(try Manifest.load(GoldenFiles.url(GoldenFiles.manifestFile), checkFiles: false))
    }

    func testAlteredModelFile() throws {
        let manifest = try GoldenFiles.manifest()
        let artifact = try XCTUnwrap(manifest.artifacts.first)
        let url = tmp.appendingPathComponent(artifact.file)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("not the model".utf8).write(to: url)
        XCTAssertNoThrow(try Manifest.resolve(folder: tmp, artifact: artifact, checkSha256: false))
        assertSDKError(.modelFile, containing: "does not match its sha256") {
            _ = try Manifest.resolve(folder: self.tmp, artifact: artifact, checkSha256: true)
        }
    }

    func testMissingOrWrongVocabulary() throws {
        let manifest = try GoldenFiles.manifest()
        assertSDKError(.modelFile, containing: "is missing") {
            _ = try Tokenizers.fromManifest(manifest, folder: self.tmp)
        }
        assertSDKError(.modelFile, containing: "vocab_sha256") {
            _ = try WordTokenizer.fromManifest(manifest, vocabData: Data("<pad>\n<sot>\n<eot>\n<unk>\nred\n".utf8))
        }
    }

    func testImageWithoutPixels() throws {
        let empty = try RawImage(width: 0, height: 5, mode: .RGB)
        assertSDKError(.image, containing: "no pixels") { _ = try Preprocess.preprocess(empty, size: 64) }
        assertSDKError(.invalidArgument, containing: "samples") {
            _ = try RawImage(width: 2, height: 2, mode: .RGBA, data: [1, 2, 3])
        }
    }

    func testUndecodableImage() throws {
        #if canImport(ImageIO) && canImport(CoreGraphics)
        assertSDKError(.image, containing: "cannot read") { _ = try ImageDecoder.decode(data: Data()) }
        assertSDKError(.image, containing: "cannot read") {
            _ = try ImageDecoder.decode(data: Data("this is not an image".utf8), source: "notes.txt")
        }
        let golden = try GoldenFiles.golden()
        let png = try Data(contentsOf: GoldenFiles.url(try XCTUnwrap(golden.images.first).file))
        assertSDKError(.image, containing: "cannot read") {
            _ = try ImageDecoder.decode(data: png.prefix(png.count / 2), source: "truncated.png")
        }
        assertSDKError(.image, containing: "cannot read image") {
            _ = try ImageDecoder.decode(url: self.tmp.appendingPathComponent("missing.png"))
        }
        #else
        throw XCTSkip("decoding needs ImageIO (Apple platforms)")
        #endif
    }
}
