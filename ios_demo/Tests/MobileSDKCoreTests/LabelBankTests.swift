import Foundation
import MobileSDKCore
import XCTest

/// The label bank reader (android_demo: `LabelBankTest`): a good file, a wrong sha256, wrong sizes
/// and a wrong schema, each made here beside an edited copy of tests/golden's manifest; scoring
/// against the bank; the zero-shot messages of an export without a text tower.
final class LabelBankTests: XCTestCase {
    private var tmp: URL!
    private let classes = ["circle", "square", "triangle"]

    override func setUpWithError() throws {
        tmp = try makeTemporaryFolder("mobile-sdk-bank", removedAfter: self)
    }

    /// Deterministic unit rows of float32 values, one per class.
    private func rows(_ n: Int, _ dim: Int) -> [[Double]] {
        (0..<n).map { i in
            let raw = (0..<dim).map { k in sin(1.7 * Double((i + 1) * (k + 1)) + Double(i)) }
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return raw.map { Double(Float($0 / norm)) }
        }
    }

    /// label_bank.json bytes as mobile_sdk/label_bank.py writes them.
    private func bankData(schema: String = LabelBank.schemaName, version: Int = 1, classes: [String]? = nil,
                          dim: Int, embeddings: [[Double]]) throws -> Data {
        let obj: [String: Any] = [
            "schema": schema, "schema_version": version, "classes": classes ?? self.classes,
            "templates": ["a {}"], "embed_dim": dim, "normalized": true, "embeddings": embeddings,
        ]
        return try JSONSerialization.data(withJSONObject: obj)
    }

    /// tests/golden's manifest with a label_bank entry for `data` (sha256, class count, embed_dim
    /// overridable), written to tmp/manifest.json, and `data` as tmp/label_bank.json.
    private func export(_ data: Data, sha256: String? = nil, classes: Int? = nil, embedDim: Int? = nil,
                        file: String = "label_bank.json") throws -> URL {
        var obj = try GoldenFiles.manifestObject()
        let model = try XCTUnwrap(obj["model"] as? [String: Any])
        let dim = try XCTUnwrap(model["embed_dim"] as? Int)
        obj["label_bank"] = [
            "file": file, "sha256": sha256 ?? Checksum.sha256Hex(of: data), "classes": classes ?? self.classes.count,
            "embed_dim": embedDim ?? dim, "templates": ["a {}"],
        ] as [String: Any]
        try JSONSerialization.data(withJSONObject: obj).write(to: tmp.appendingPathComponent("manifest.json"))
        try data.write(to: tmp.appendingPathComponent("label_bank.json"))
        return tmp.appendingPathComponent("manifest.json")
    }

    private var dim: Int {
        get throws { try GoldenFiles.manifest().model.embedDim }
    }

    func testReadsAGoodFileAndScores() throws {
        let dim = try self.dim
        let emb = rows(classes.count, dim)
        let manifest = try Manifest.load(try export(try bankData(dim: dim, embeddings: emb)))
        let spec = try XCTUnwrap(manifest.labelBank)
        XCTAssertEqual(spec.classes, classes.count)
        XCTAssertEqual(spec.embedDim, dim)
        XCTAssertEqual(spec.templates, ["a {}"])
        let bank = try LabelBank.fromManifest(manifest, folder: tmp)
        XCTAssertEqual(bank.classes, classes)
        XCTAssertEqual(bank.templates, ["a {}"])
        XCTAssertEqual(bank.embedDim, dim)
        for (got, want) in zip(bank.embeddings, emb) {
            for k in want.indices {
                XCTAssertEqual(got[k], want[k], accuracy: 1e-12)
            }
        }
        let image = (0..<dim).map { emb[1][$0] * 3 + emb[2][$0] }
        let scores = try bank.scores(image: image, logitScale: manifest.model.logitScale)
        let want = try Scoring.scores([image], bank.embeddings, logitScale: manifest.model.logitScale)[0]
        XCTAssertEqual(scores, want)
        XCTAssertEqual(Scoring.ranking(scores).first, 1)
        assertSDKError(.invalidArgument, containing: "embed_dim") {
            _ = try bank.scores(image: [1, 2], logitScale: 1)
        }
    }

    func testShaMismatch() throws {
        let dim = try self.dim
        let data = try bankData(dim: dim, embeddings: rows(classes.count, dim))
        let manifest = try Manifest.load(try export(data, sha256: String(repeating: "0", count: 64)))
        assertSDKError(.modelFile, containing: "does not match its sha256") {
            _ = try LabelBank.fromManifest(manifest, folder: self.tmp)
        }
        try FileManager.default.removeItem(at: tmp.appendingPathComponent("label_bank.json"))
        assertSDKError(.modelFile, containing: "label bank label_bank.json is missing") {
            _ = try LabelBank.fromManifest(manifest, folder: self.tmp)
        }
    }

    func testWrongDimensions() throws {
        let dim = try self.dim
        let good = try bankData(dim: dim, embeddings: rows(classes.count, dim))
        // the manifest's entry against the model
        assertSDKError(.manifest, containing: "label_bank.embed_dim \(dim + 1) differs from model.embed_dim \(dim)") {
            _ = try Manifest.load(try self.export(good, embedDim: dim + 1))
        }
        assertSDKError(.manifest, containing: "label_bank.classes must be >= 1") {
            _ = try Manifest.load(try self.export(good, classes: 0))
        }
        assertSDKError(.manifest, containing: "inside the export folder") {
            _ = try Manifest.load(try self.export(good, file: "../label_bank.json"))
        }
        // the file against the model and the manifest
        let small = try bankData(dim: dim - 1, embeddings: rows(classes.count, dim - 1))
        let ms = try Manifest.load(try export(small))
        assertSDKError(.modelFile, containing: "embed_dim \(dim - 1) differs from the model's embed_dim \(dim)") {
            _ = try LabelBank.fromManifest(ms, folder: self.tmp)
        }
        var ragged = rows(classes.count, dim)
        ragged[2] = Array(ragged[2].prefix(dim - 3))
        let mr = try Manifest.load(try export(try bankData(dim: dim, embeddings: ragged)))
        assertSDKError(.modelFile, containing: "embeddings[2] has \(dim - 3) values, embed_dim is \(dim)") {
            _ = try LabelBank.fromManifest(mr, folder: self.tmp)
        }
        let mf = try Manifest.load(try export(try bankData(dim: dim, embeddings: rows(2, dim))))
        assertSDKError(.modelFile, containing: "has 2 embeddings for 3 classes") {
            _ = try LabelBank.fromManifest(mf, folder: self.tmp)
        }
        let mc = try Manifest.load(try export(good, classes: 4))
        assertSDKError(.modelFile, containing: "has 3 classes, the manifest's label_bank says 4") {
            _ = try LabelBank.fromManifest(mc, folder: self.tmp)
        }
    }

    func testWrongSchema() throws {
        let dim = try self.dim
        let emb = rows(classes.count, dim)
        let other = try Manifest.load(try export(try bankData(schema: "something-else", dim: dim, embeddings: emb)))
        assertSDKError(.modelFile, containing: "schema is 'something-else', expected 'mobile-sdk.label_bank'") {
            _ = try LabelBank.fromManifest(other, folder: self.tmp)
        }
        let v2 = try Manifest.load(try export(try bankData(version: 2, dim: dim, embeddings: emb)))
        assertSDKError(.modelFile, containing: "schema_version 2 is not supported") {
            _ = try LabelBank.fromManifest(v2, folder: self.tmp)
        }
        let notJson = try Manifest.load(try export(Data("{\"schema\": ".utf8)))
        assertSDKError(.modelFile, containing: "is not valid JSON") {
            _ = try LabelBank.fromManifest(notJson, folder: self.tmp)
        }
        let twice = try bankData(classes: ["circle", "square", "circle"], dim: dim, embeddings: emb)
        let mt = try Manifest.load(try export(twice))
        assertSDKError(.modelFile, containing: "named twice") {
            _ = try LabelBank.fromManifest(mt, folder: self.tmp)
        }
        // tests/golden has no label bank
        let plain = try GoldenFiles.manifest()
        XCTAssertNil(plain.labelBank)
        assertSDKError(.manifest, containing: "--label-bank") {
            _ = try LabelBank.fromManifest(plain, folder: GoldenFiles.folder)
        }
    }

    func testImageTowerOnlyExports() throws {
        // every text artifact becomes an image one: no pairs, but image precisions and a default remain
        var obj = try GoldenFiles.manifestObject()
        var arts = try XCTUnwrap(obj["artifacts"] as? [[String: Any]])
        for i in arts.indices {
            arts[i]["tower"] = "image"
        }
        obj["artifacts"] = arts
        let m = try Manifest.parse(try JSONSerialization.data(withJSONObject: obj), source: "m.json")
        XCTAssertFalse(m.hasTextTower)
        XCTAssertTrue(m.precisions(platform: "coreml").isEmpty)
        XCTAssertTrue(m.imagePrecisions(platform: "coreml").contains(try m.defaultPrecision(platform: "coreml")))
        let none = LabelBank.noZeroShotError(m)
        XCTAssertEqual(none.kind, .modelFile)
        XCTAssertTrue(none.message.contains("this export has neither"), none.message)
        XCTAssertTrue(none.message.contains("--label-bank"), none.message)
        XCTAssertTrue(LabelBank.noTextTowerError("text-to-image search", manifest: m).message
            .contains("text-to-image search needs the text tower"))
        let full = try GoldenFiles.manifest()
        XCTAssertTrue(full.hasTextTower)
        XCTAssertTrue(Set(full.imagePrecisions(platform: "coreml")).isSuperset(of: full.precisions(platform: "coreml")))
    }
}
