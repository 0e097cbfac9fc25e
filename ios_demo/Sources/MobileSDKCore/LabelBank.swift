import Foundation

/// The export's label bank (`mobile-sdk export --label-bank FILE`, `mobile_sdk/label_bank.py`;
/// android_demo: `LabelBank`): the text embeddings of a fixed set of classes, made at export time
/// from the class names and the prompt templates, so the app classifies images zero-shot with the
/// image tower alone (the text tower may not ship at all: `--tower image`). The file,
/// `label_bank.json`:
///
///     {"schema": "mobile-sdk.label_bank", "schema_version": 1, "classes": [...], "templates": [...],
///      "embed_dim": D, "normalized": true, "embeddings": [[D floats] per class]}
///
/// `fromManifest` reads the file the manifest's `label_bank` entry names and checks it against the
/// entry's sha256 (as model files are checked), its schema, its class count and its embedding size
/// against the manifest and the model's embed_dim. `scores` scores an image as `Scoring` scores
/// prompts: logit_scale * cosine, in float64.
public struct LabelBank: Sendable {
    public static let schemaName = "mobile-sdk.label_bank"
    public static let supportedSchemaVersion = 1
    static let howToFix = "bundle the label_bank.json of the same export as manifest.json (`mobile-sdk export "
        + "--label-bank CLASSES.txt` writes both; ios_demo/sync_assets.sh copies it)"

    /// The file's name in the export folder (the manifest's label_bank.file).
    public let file: String
    /// Class names, in the order of the embeddings.
    public let classes: [String]
    /// The prompt templates each class embedding averages.
    public let templates: [String]
    public let embedDim: Int
    /// One row of embed_dim values per class, exactly as the file holds them.
    public let embeddings: [[Double]]

    /// Number of classes.
    public var count: Int { classes.count }

    /// label_bank.json; every field optional so that each problem gets its own message.
    private struct Contents: Decodable {
        let schema: String?
        let schemaVersion: Int?
        let classes: [String]?
        let templates: [String]?
        let embedDim: Int?
        let embeddings: [[Double]]?

        enum CodingKeys: String, CodingKey {
            case schema
            case schemaVersion = "schema_version"
            case classes
            case templates
            case embedDim = "embed_dim"
            case embeddings
        }
    }

    /// logit_scale * cosine(image embedding, class embedding) for every class, in class order.
    public func scores(image: [Double], logitScale: Double) throws -> [Double] {
        guard image.count == embedDim else {
            throw SDKError(.invalidArgument, "the image embedding has \(image.count) values, the label bank's "
                + "embed_dim is \(embedDim)")
        }
        return try Scoring.scores([image], embeddings, logitScale: logitScale)[0]
    }

    // MARK: the app's zero-shot messages (android_demo: Pipeline.noZeroShot / noTextTower)

    /// The error when zero-shot classification has nothing to compare an image with: the export
    /// has no text tower (to embed prompts) and no label bank (class embeddings made at export).
    public static func noZeroShotError(_ manifest: Manifest) -> SDKError {
        let has = manifest.hasTextTower ? "no label bank and no text tower at this precision" : "neither"
        let fix = "re-export with both towers (`mobile-sdk export` without `--tower image`), or add `--label-bank "
            + "CLASSES.txt` (one class name per line) to classify with the image tower alone"
        return SDKError(.modelFile, "zero-shot classification needs the text tower (to embed the prompts) or a "
            + "label bank (class embeddings made at export), and this export has \(has): \(fix)")
    }

    /// The error for prompts or a search query when there is no text tower to embed them
    /// (`what`: "text-to-image search", ...); it names the label bank when the export has one.
    public static func noTextTowerError(_ what: String, manifest: Manifest) -> SDKError {
        let ships = manifest.hasTextTower ? "no text tower at this precision" : "the image tower only"
        let fix = manifest.labelBank != nil ? "classify against the export's label bank instead" : "re-export with both towers"
        return SDKError(.modelFile, "\(what) needs the text tower, and the export ships \(ships); \(fix)")
    }

    // MARK: reading

    /// The manifest's label bank entry; a clear `.manifest` error when the export has none.
    public static func require(_ manifest: Manifest) throws -> Manifest.LabelBankSpec {
        guard let spec = manifest.labelBank else {
            throw SDKError(.manifest, "the export has no label bank (manifest.json has no label_bank entry); export "
                + "one with `mobile-sdk export --label-bank CLASSES.txt` (one class name per line)")
        }
        return spec
    }

    /// The label bank the manifest names; `read` returns an export-folder file's bytes by its
    /// manifest path, or nil when the file is not there.
    public static func fromManifest(_ manifest: Manifest, read: (String) throws -> Data?) throws -> LabelBank {
        let spec = try require(manifest)
        let data: Data?
        do {
            data = try read(spec.file)
        } catch {
            throw SDKError(.modelFile, "cannot read label bank \(spec.file): \(error.localizedDescription)")
        }
        guard let found = data else {
            throw SDKError(.modelFile, "label bank \(spec.file) is missing; copy it from the export folder (the "
                + "manifest's label_bank names it; ios_demo/sync_assets.sh does)")
        }
        return try parse(found, manifest: manifest)
    }

    /// `fromManifest(_:read:)` with the file read from an export folder.
    public static func fromManifest(_ manifest: Manifest, folder: URL) throws -> LabelBank {
        try fromManifest(manifest) { name in
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                return nil
            }
            return try Data(contentsOf: url)
        }
    }

    /// The bytes of the manifest's label bank file, checked: sha256 against the manifest, then the
    /// schema, the class count and embed_dim against the manifest and the model.
    public static func parse(_ data: Data, manifest: Manifest) throws -> LabelBank {
        let spec = try require(manifest)
        func bad(_ what: String) -> SDKError {
            SDKError(.modelFile, "label bank \(spec.file) \(what); \(howToFix)")
        }
        let got = Checksum.sha256Hex(of: data)
        guard got == spec.sha256.lowercased() else {
            throw bad("does not match its sha256 in the manifest (\(got) != \(spec.sha256))")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw bad("is not valid JSON (\(error.localizedDescription))")
        }
        guard json is [String: Any] else { throw bad("is not a JSON object") }
        let decoder = JSONDecoder()
        // just the schema fields, read first: a file of another kind or version is named as such
        let header: Manifest.Header
        do {
            header = try decoder.decode(Manifest.Header.self, from: data)
        } catch {
            throw bad("is malformed (\(describe(error)))")
        }
        guard header.schema == schemaName else {
            let schema = header.schema.map { "'" + $0 + "'" } ?? "missing"
            throw bad("schema is \(schema), expected '\(schemaName)'")
        }
        guard header.schemaVersion == supportedSchemaVersion else {
            let version = header.schemaVersion.map { String($0) } ?? "missing"
            throw bad("schema_version \(version) is not supported (this app reads \(supportedSchemaVersion)); "
                + "re-export with a mobile-sdk that writes version \(supportedSchemaVersion) or update the app")
        }
        let c: Contents
        do {
            c = try decoder.decode(Contents.self, from: data)
        } catch {
            throw bad("is malformed (\(describe(error)))")
        }
        guard let classes = c.classes else { throw bad("lacks 'classes'") }
        var seen = Set<String>()
        for (i, name) in classes.enumerated() {
            if name.trimmingCharacters(in: .whitespaces).isEmpty {
                throw bad("classes[\(i)] is empty")
            }
            if !seen.insert(name).inserted {
                throw bad("classes[\(i)] '\(name)' is named twice")
            }
        }
        guard classes.count == spec.classes else {
            throw bad("has \(classes.count) classes, the manifest's label_bank says \(spec.classes)")
        }
        guard let dim = c.embedDim else { throw bad("lacks 'embed_dim'") }
        guard dim == manifest.model.embedDim, dim == spec.embedDim else {
            throw bad("embed_dim \(dim) differs from the model's embed_dim \(manifest.model.embedDim) "
                + "(label_bank.embed_dim \(spec.embedDim))")
        }
        guard let rows = c.embeddings else { throw bad("lacks 'embeddings'") }
        guard rows.count == classes.count else {
            throw bad("has \(rows.count) embeddings for \(classes.count) classes (one row per class)")
        }
        for (i, row) in rows.enumerated() {
            guard row.count == dim else {
                throw bad("embeddings[\(i)] has \(row.count) values, embed_dim is \(dim)")
            }
            guard row.allSatisfy({ $0.isFinite }) else {
                throw bad("embeddings[\(i)] has a non-finite value")
            }
        }
        return LabelBank(file: spec.file, classes: classes, templates: c.templates ?? [], embedDim: dim,
                         embeddings: rows)
    }

    /// A decoding error as "where: what", in the file's own key names.
    private static func describe(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ keys: [CodingKey]) -> String {
            keys.map { key in key.intValue.map { String($0) } ?? key.stringValue }.joined(separator: ".")
        }
        switch e {
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(type)"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(type), got null"
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath)) lacks '\(key.stringValue)'"
        case .dataCorrupted(let ctx):
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }
}
