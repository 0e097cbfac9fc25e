import Foundation

/// One input or output of an artifact, as the manifest describes it: name, shape, dtype
/// ("float32", "int32", "int8", ...), layout ("NCHW", "NHWC", "NT", "NC") and, for quantized
/// tensors, scale and zero point (nil otherwise). android_demo: `TensorSpec`.
public struct TensorSpec: Codable, Equatable, Sendable, CustomStringConvertible {
    public let name: String
    public let shape: [Int]
    public let dtype: String
    public let layout: String?
    public let scale: Double?
    public let zeroPoint: Int?

    enum CodingKeys: String, CodingKey {
        case name
        case shape
        case dtype
        case layout
        case scale
        case zeroPoint = "zero_point"
    }

    public init(name: String, shape: [Int], dtype: String, layout: String? = nil, scale: Double? = nil,
                zeroPoint: Int? = nil) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.layout = layout
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// Number of elements: the product of the shape.
    public var elementCount: Int { shape.reduce(1, *) }

    public var description: String {
        "\(name) \(dtype)\(shape)" + (layout.map { " \($0)" } ?? "")
    }
}

/// `manifest.json` as written by `mobile-sdk export` (schema "mobile-sdk-manifest", version 1),
/// read with Codable; the checks mirror `mobile_sdk/manifest.py` `validate_manifest` and
/// android_demo's `Manifest`. Everything the app needs comes from here: nothing is guessed from
/// file names.
public struct Manifest: Codable, Sendable {
    public static let schemaName = "mobile-sdk-manifest"
    public static let supportedSchemaVersion = 1
    public static let platforms = ["executorch", "tflite", "coreml"]
    public static let towers = ["image", "text"]
    public static let fileName = "manifest.json"

    /// How the app makes the image tower's input from a photo. The model's pixel normalization
    /// (mean / std) is inside its graph: the app only resizes, to image_size x image_size, by
    /// `resizeRule`; `Preprocess` implements "center_crop" (the exact integer recipe of
    /// `mobile_sdk/preprocess.py`) and refuses other rules.
    public struct Preprocessing: Codable, Sendable {
        public static let centerCrop = "center_crop"
        /// How exports before the "center_crop" value described the same recipe.
        static let legacyCenterCrop = "EXIF transpose; alpha over white; center crop to the largest square"

        public let imageSize: Int
        public let color: String?
        public let layout: String?
        public let dtype: String?
        /// The manifest's resize value as written (see `resizeRule`).
        public let resize: String?
        /// The model's own interpolation ("bicubic", ...), or nil; the app's resize is the exact area resize.
        public let interpolation: String?
        /// Per-channel mean / std of [0, 1] pixels (informational: folded into the graph), or nil.
        public let mean: [Double]?
        public let std: [Double]?

        enum CodingKeys: String, CodingKey {
            case imageSize = "image_size"
            case color
            case layout
            case dtype
            case resize
            case interpolation
            case mean
            case std
        }

        public init(imageSize: Int, resize: String? = nil, interpolation: String? = nil, mean: [Double]? = nil,
                    std: [Double]? = nil) {
            self.imageSize = imageSize
            self.color = nil
            self.layout = nil
            self.dtype = nil
            self.resize = resize
            self.interpolation = interpolation
            self.mean = mean
            self.std = std
        }

        /// The resize rule: "center_crop" when the manifest has none or the older description of it.
        public var resizeRule: String {
            guard let r = resize, !r.hasPrefix(Preprocessing.legacyCenterCrop) else {
                return Preprocessing.centerCrop
            }
            return r
        }

        /// Throws a clear `.manifest` error when the resize rule is not one this app implements.
        public func requireSupported() throws {
            guard resizeRule == Preprocessing.centerCrop else {
                throw SDKError(.manifest, "the model's preprocessing resize rule '\(resizeRule)' is not implemented by "
                    + "this app (it implements '\(Preprocessing.centerCrop)': center crop to the largest square, exact "
                    + "area resize to image_size); export a model whose manifest says \(Preprocessing.centerCrop)")
            }
        }
    }

    /// Tokenizer kinds a manifest may name (`mobile_sdk/manifest.py` validates the same); the app
    /// implements `Tokenizers.supportedKinds`.
    public static let tokenizerKinds = ["word", "clip_bpe", "hf"]

    /// The tokenizer settings of the model.
    public struct TokenizerSpec: Codable, Sendable {
        /// The manifest's kind as written; nil in exports that predate the field (then "word").
        public let kind: String?
        /// The vocabulary file (kind word).
        public let vocabFile: String?
        /// sha256 of the vocabulary file, or nil when the manifest has none.
        public let vocabSha256: String?
        /// The gzip BPE merges file (kind clip_bpe).
        public let mergesFile: String?
        /// sha256 of the merges file, or nil when the manifest has none.
        public let mergesSha256: String?
        /// Vocabulary size, or nil when the manifest has none.
        public let vocabSize: Int?
        public let contextLength: Int
        public let padId: Int
        public let sotId: Int
        public let eotId: Int
        /// The unknown-word id (kind word only).
        public let unkId: Int?

        enum CodingKeys: String, CodingKey {
            case kind
            case vocabFile = "vocab_file"
            case vocabSha256 = "vocab_sha256"
            case mergesFile = "merges_file"
            case mergesSha256 = "merges_sha256"
            case vocabSize = "vocab_size"
            case contextLength = "context_length"
            case padId = "pad_id"
            case sotId = "sot_id"
            case eotId = "eot_id"
            case unkId = "unk_id"
        }

        /// "word", "clip_bpe" or "hf".
        public var tokenizerKind: String { kind ?? "word" }

        /// The files of the export folder this tokenizer reads (to bundle them with the app).
        public var files: [String] { [vocabFile, mergesFile].compactMap { $0 } }
    }

    /// A zero-shot task: class labels and one prompt per label, in the same order.
    public struct Task: Codable, Sendable {
        public let labels: [String]
        public let prompts: [String]

        enum CodingKeys: String, CodingKey {
            case labels
            case prompts
        }
    }

    public struct Model: Codable, Sendable {
        public let name: String?
        public let embedDim: Int
        public let logitScale: Double
        public let preprocessing: Preprocessing
        public let tokenizer: TokenizerSpec
        public let tasks: [String: Task]

        enum CodingKeys: String, CodingKey {
            case name
            case embedDim = "embed_dim"
            case logitScale = "logit_scale"
            case preprocessing
            case tokenizer
            case tasks
        }
    }

    /// The manifest's `label_bank` entry (`mobile-sdk export --label-bank FILE`): the file of class
    /// embeddings that lets the app classify with the image tower alone, its sha256, class count,
    /// embedding size and prompt templates. `LabelBank.fromManifest` reads and checks the file.
    /// android_demo: `Manifest.LabelBankSpec`.
    public struct LabelBankSpec: Codable, Sendable {
        public let file: String
        public let sha256: String
        /// Number of classes (rows of the file).
        public let classes: Int
        public let embedDim: Int
        /// The prompt templates the class embeddings average; nil when not recorded.
        public let templates: [String]?

        enum CodingKeys: String, CodingKey {
            case file
            case sha256
            case classes
            case embedDim = "embed_dim"
            case templates
        }
    }

    /// One exported model file: a tower of one platform at one precision.
    public struct Artifact: Codable, Sendable, CustomStringConvertible {
        public let platform: String
        public let tower: String
        public let precision: String
        public let variant: String
        public let file: String
        public let sha256: String
        public let bytes: Int
        public let inputs: [TensorSpec]
        public let outputs: [TensorSpec]
        /// The manifest's `default` field: this platform's default precision (nil in older manifests).
        public let isDefault: Bool?

        enum CodingKeys: String, CodingKey {
            case platform
            case tower
            case precision
            case variant
            case file
            case sha256
            case bytes
            case inputs
            case outputs
            case isDefault = "default"
        }

        public var description: String { "\(platform)/\(tower)/\(precision) (\(file))" }
    }

    public let schema: String
    public let schemaVersion: Int
    public let sdkVersion: String?
    public let model: Model
    public let artifacts: [Artifact]
    /// The golden-vector file name, or nil.
    public let golden: String?
    /// The label bank entry, or nil when the export has none.
    public let labelBank: LabelBankSpec?

    enum CodingKeys: String, CodingKey {
        case schema
        case schemaVersion = "schema_version"
        case sdkVersion = "sdk_version"
        case model
        case artifacts
        case golden
        case labelBank = "label_bank"
    }

    // MARK: reading

    /// Just the fields that say whether the rest can be read at all (of manifest.json, and of
    /// label_bank.json: `LabelBank.parse`).
    struct Header: Decodable {
        let schema: String?
        let schemaVersion: Int?
        let sdkVersion: String?

        enum CodingKeys: String, CodingKey {
            case schema
            case schemaVersion = "schema_version"
            case sdkVersion = "sdk_version"
        }
    }

    /// Reads `url` (a manifest.json, or a folder holding one) and validates its structure; with
    /// `checkFiles` every artifact must exist beside it (and with `checkSha256`, match its hash).
    public static func load(_ url: URL, checkFiles: Bool = false, checkSha256: Bool = false) throws -> Manifest {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: url.path, isDirectory: &isDir)
        let file = exists && isDir.boolValue ? url.appendingPathComponent(fileName) : url
        guard fm.fileExists(atPath: file.path) else {
            throw SDKError(.manifest, "manifest not found: \(file.path); create it with "
                + "`mobile-sdk export --out DIR` and bundle DIR (ios_demo/sync_assets.sh DIR)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw SDKError(.manifest, "cannot read manifest \(file.path): \(error.localizedDescription)")
        }
        let manifest = try parse(data, source: file.path)
        if checkFiles {
            try manifest.checkFiles(folder: file.deletingLastPathComponent(), checkSha256: checkSha256)
        }
        return manifest
    }

    /// Parses and validates manifest JSON; `source` names it in errors.
    public static func parse(_ data: Data, source: String) throws -> Manifest {
        let decoder = JSONDecoder()
        let header: Header
        do {
            header = try decoder.decode(Header.self, from: data)
        } catch {
            throw SDKError(.manifest, "manifest \(source): \(describe(error))")
        }
        guard header.schema == schemaName else {
            let got = header.schema.map { "'\($0)'" } ?? "missing"
            throw SDKError(.manifest, "manifest \(source): schema is \(got), expected '\(schemaName)'; "
                + "is this a manifest.json written by `mobile-sdk export`?")
        }
        guard let version = header.schemaVersion else {
            throw SDKError(.manifest, "manifest \(source): manifest lacks 'schema_version'")
        }
        guard version == supportedSchemaVersion else {
            let wrote = header.sdkVersion.map { "mobile-sdk \($0)" } ?? "a mobile-sdk of an unknown version"
            let fix = version > supportedSchemaVersion
                ? "update the app, or re-export with a mobile-sdk that writes version \(supportedSchemaVersion)"
                : "re-export with a mobile-sdk that writes version \(supportedSchemaVersion)"
            throw SDKError(.manifest, "manifest \(source): schema_version \(version) is not supported (this app "
                + "reads \(supportedSchemaVersion)): it was written by \(wrote); \(fix)")
        }
        let manifest: Manifest
        do {
            manifest = try decoder.decode(Manifest.self, from: data)
        } catch {
            throw SDKError(.manifest, "manifest \(source): \(describe(error))")
        }
        do {
            try manifest.validate()
        } catch let e as SDKError {
            throw SDKError(.manifest, "manifest \(source): \(e.message)")
        }
        return manifest
    }

    /// The value checks Codable cannot express (android_demo `Manifest.fromJson`).
    public func validate() throws {
        func bad(_ message: String) -> SDKError { SDKError(.manifest, message) }
        guard model.embedDim >= 1 else { throw bad("model.embed_dim must be >= 1, got \(model.embedDim)") }
        guard model.logitScale > 0, model.logitScale.isFinite else {
            throw bad("model.logit_scale must be a positive finite number, got \(model.logitScale)")
        }
        guard model.preprocessing.imageSize >= 1 else {
            throw bad("model.preprocessing.image_size must be >= 1, got \(model.preprocessing.imageSize)")
        }
        guard model.tokenizer.contextLength >= 2 else {
            throw bad("model.tokenizer.context_length must be >= 2, got \(model.tokenizer.contextLength)")
        }
        let tok = model.tokenizer
        guard Manifest.tokenizerKinds.contains(tok.tokenizerKind) else {
            throw bad("model.tokenizer.kind '\(tok.tokenizerKind)' is not one of \(Manifest.tokenizerKinds)")
        }
        if tok.tokenizerKind == "word" && (tok.vocabFile == nil || tok.unkId == nil) {
            throw bad("model.tokenizer lacks '\(tok.vocabFile == nil ? "vocab_file" : "unk_id")'")
        }
        if tok.tokenizerKind == "clip_bpe" && tok.mergesFile == nil {
            throw bad("model.tokenizer lacks 'merges_file'")
        }
        for f in tok.files where !Manifest.insideFolder(f) {
            throw bad("model.tokenizer file must be a path inside the export folder, got '\(f)'")
        }
        for (name, task) in model.tasks where task.labels.count != task.prompts.count || task.labels.isEmpty {
            throw bad("tasks.\(name) needs as many prompts as labels (>0)")
        }
        if let bank = labelBank {
            guard Manifest.insideFolder(bank.file) else {
                throw bad("label_bank.file must be a path inside the export folder, got '\(bank.file)'")
            }
            guard bank.classes >= 1 else { throw bad("label_bank.classes must be >= 1, got \(bank.classes)") }
            guard bank.embedDim == model.embedDim else {
                throw bad("label_bank.embed_dim \(bank.embedDim) differs from model.embed_dim \(model.embedDim); the "
                    + "label bank comes from another model: re-export it with this one")
            }
        }
        for (i, a) in artifacts.enumerated() {
            let w = "artifacts[\(i)]"
            guard Manifest.platforms.contains(a.platform) else {
                throw bad("\(w).platform '\(a.platform)' not in \(Manifest.platforms)")
            }
            guard Manifest.towers.contains(a.tower) else {
                throw bad("\(w).tower '\(a.tower)' not in \(Manifest.towers)")
            }
            if !Manifest.insideFolder(a.file) {
                throw bad("\(w).file must be a path inside the export folder, got '\(a.file)'")
            }
            for (key, specs) in [("inputs", a.inputs), ("outputs", a.outputs)] {
                for (j, spec) in specs.enumerated() where !spec.shape.allSatisfy({ $0 > 0 }) {
                    throw bad("\(w).\(key)[\(j)].shape must be positive ints, got \(spec.shape)")
                }
            }
        }
    }

    /// A relative path that stays inside the export folder.
    static func insideFolder(_ file: String) -> Bool {
        let normalized = "/" + file.replacingOccurrences(of: "\\", with: "/") + "/"
        return !(file.isEmpty || file.hasPrefix("/") || file.hasPrefix("\\") || normalized.contains("/../"))
    }

    /// A decoding error as "where: what" (the coding path in the manifest's own key names).
    static func describe(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        switch e {
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath)) lacks '\(key.stringValue)'"
        case .typeMismatch(let type, let ctx):
            if ctx.codingPath.isEmpty {
                return "not a JSON object"
            }
            return "\(path(ctx.codingPath)) must be \(type) (\(ctx.debugDescription))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(type), got null"
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                return "is not valid JSON (\(ctx.debugDescription))"
            }
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        var s = "manifest"
        for key in keys {
            if let i = key.intValue {
                s += "[\(i)]"
            } else {
                s += "." + key.stringValue
            }
        }
        return s
    }

    // MARK: queries

    /// The artifact of one platform, tower and precision, or nil.
    public func find(platform: String, tower: String, precision: String) -> Artifact? {
        artifacts.first { $0.platform == platform && $0.tower == tower && $0.precision == precision }
    }

    /// The precisions of `platform` that have both towers, in manifest order.
    public func precisions(platform: String) -> [String] {
        var out: [String] = []
        for a in artifacts where a.platform == platform && !out.contains(a.precision) {
            if find(platform: platform, tower: "image", precision: a.precision) != nil
                && find(platform: platform, tower: "text", precision: a.precision) != nil {
                out.append(a.precision)
            }
        }
        return out
    }

    /// The precisions of `platform` that have an image tower (with or without the text tower), in
    /// manifest order: what the app can run when it classifies against a `LabelBank`.
    public func imagePrecisions(platform: String) -> [String] {
        var out: [String] = []
        for a in artifacts where a.platform == platform && a.tower == "image" && !out.contains(a.precision) {
            out.append(a.precision)
        }
        return out
    }

    /// Whether any artifact is a text tower (an export with `--tower image` has none).
    public var hasTextTower: Bool { artifacts.contains { $0.tower == "text" } }

    /// The precision the app uses by default on `platform`: the one the manifest marks
    /// `"default": true`; in a manifest without the mark, for Core ML the first palettized one
    /// ("pal6" is the SDK's default), for TFLite "int8_cpu", then "int8"; else the first precision
    /// with both towers. When the platform has no image + text
    /// pair (an image-tower-only export), the same rules pick among the precisions with an image tower.
    public func defaultPrecision(platform: String) throws -> String {
        let pairs = precisions(platform: platform)
        let ps = pairs.isEmpty ? imagePrecisions(platform: platform) : pairs
        guard let first = ps.first else {
            throw SDKError(.modelFile, "the manifest lists no \(platform) artifacts with an image tower; export "
                + "them with `mobile-sdk export`")
        }
        for p in ps where find(platform: platform, tower: "image", precision: p)?.isDefault == true {
            return p  // the manifest's own mark
        }
        if platform == "coreml", let pal = ps.first(where: { $0.hasPrefix("pal") }) {
            return pal
        }
        if platform == "tflite" {
            if ps.contains("int8_cpu") {
                return "int8_cpu"
            }
        }
        if ps.contains("int8") {
            return "int8"
        }
        return first
    }

    /// Task names, sorted (JSON objects have no order Codable keeps).
    public var taskNames: [String] { model.tasks.keys.sorted() }

    /// The zero-shot task the demo shows first (zeroshot_color when present).
    public func defaultTask() throws -> String {
        guard let first = taskNames.first else {
            throw SDKError(.manifest, "the manifest has no zero-shot tasks")
        }
        return model.tasks["zeroshot_color"] != nil ? "zeroshot_color" : first
    }

    /// The file of `artifact` inside `folder`; a clear `.modelFile` error when it is missing.
    /// With `checkSha256` the file's sha256 must match the manifest.
    public static func resolve(folder: URL, artifact a: Artifact, checkSha256: Bool) throws -> URL {
        let url = folder.appendingPathComponent(a.file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SDKError(.modelFile, "model file \(a.file) (\(a.platform) \(a.tower) \(a.precision)) is missing from "
                + "\(folder.path); re-run `mobile-sdk export` and copy the export folder (ios_demo/sync_assets.sh)")
        }
        if checkSha256 {
            let got = try Checksum.sha256Hex(ofFileAt: url)
            guard got == a.sha256 else {
                throw SDKError(.modelFile, "model file \(url.path) does not match its sha256 in the manifest "
                    + "(\(got) != \(a.sha256)); re-export or restore it")
            }
        }
        return url
    }

    /// Checks every artifact file exists under `folder` (and with `checkSha256`, its hash).
    public func checkFiles(folder: URL, checkSha256: Bool) throws {
        for a in artifacts {
            _ = try Manifest.resolve(folder: folder, artifact: a, checkSha256: checkSha256)
        }
    }
}
