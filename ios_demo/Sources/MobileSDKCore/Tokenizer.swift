import Foundation

/// Texts -> the int32 token ids the text tower takes, exactly as the model's Python tokenizer
/// makes them (android_demo `Tokenizer`). The manifest's `model.tokenizer.kind` picks the
/// implementation (`Tokenizers.fromManifest`): "word" (`WordTokenizer`, the built-in model's) or
/// "clip_bpe" (`ClipBpeTokenizer`, open_clip's CLIP BPE); "hf" (a Hugging Face tokenizer.json) is
/// refused with a clear error.
public protocol Tokenizer: Sendable {
    /// The manifest's name of this kind of tokenizer ("word", "clip_bpe").
    var kind: String { get }
    /// Length of every id array `encode` returns.
    var contextLength: Int { get }
    /// One text -> int32 ids of length `contextLength`.
    func encode(_ text: String) -> [Int32]
}

/// The one factory the app uses: the tokenizer the manifest names, from the files it names.
public enum Tokenizers {
    /// The kinds this app implements; a manifest may also name "hf", refused here.
    public static let supportedKinds = [WordTokenizer.kindName, ClipBpeTokenizer.kindName]

    /// The manifest's tokenizer; `read` returns an export-folder file's bytes by its manifest
    /// path, or nil when the file is not there. Each file is checked against the manifest's
    /// sha256 / size / special ids.
    public static func fromManifest(_ manifest: Manifest, read: (String) throws -> Data?) throws -> any Tokenizer {
        let t = manifest.model.tokenizer
        switch t.tokenizerKind {
        case WordTokenizer.kindName:
            return try WordTokenizer.fromManifest(manifest, vocabData: file(t.vocabFile, "vocabulary", read))
        case ClipBpeTokenizer.kindName:
            return try ClipBpeTokenizer.fromManifest(manifest, gzData: file(t.mergesFile, "BPE merges file", read))
        default:
            throw SDKError(.text, "the model's tokenizer kind '\(t.tokenizerKind)' is not supported by this app (it "
                + "implements \(supportedKinds.joined(separator: ", "))); export a model whose tokenizer is one of these")
        }
    }

    /// `fromManifest(_:read:)` with the files read from an export folder.
    public static func fromManifest(_ manifest: Manifest, folder: URL) throws -> any Tokenizer {
        try fromManifest(manifest) { name in
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                return nil
            }
            return try Data(contentsOf: url)
        }
    }

    /// The ids `encode` returns, from a text's tokens (both kinds' last rule): [sot] + the first
    /// contextLength - 2 tokens + [eot], right-padded with pad to contextLength (longer text still
    /// ends with eot).
    static func frame(_ tokens: [Int32], contextLength: Int, sot: Int32, eot: Int32, pad: Int32) -> [Int32] {
        let n = min(tokens.count, contextLength - 2)
        var ids = [Int32](repeating: pad, count: contextLength)
        ids[0] = sot
        for i in 0..<n {
            ids[i + 1] = tokens[i]
        }
        ids[n + 1] = eot
        return ids
    }

    /// A clear `.modelFile` error when the manifest records a sha256 (`key`) for the tokenizer's
    /// file (`file`: what and its name) and `data` has another.
    static func checkSha256(_ data: Data, _ expected: String?, file: String, key: String, fix: String) throws {
        if let sha = expected, sha != Checksum.sha256Hex(of: data) {
            throw SDKError(.modelFile, "\(file) does not match the manifest's \(key); \(fix)")
        }
    }

    /// The tokenizer file's bytes as UTF-8 text; a clear `.text` error when they are not.
    static func utf8Text(_ data: Data, file: String) throws -> String {
        guard let text = String(data: data, encoding: .utf8) else {
            throw SDKError(.text, "\(file) is not valid UTF-8")
        }
        return text
    }

    private static func file(_ name: String?, _ what: String, _ read: (String) throws -> Data?) throws -> Data {
        guard let name = name else {
            throw SDKError(.manifest, "the manifest names no \(what) for its tokenizer")
        }
        let data: Data?
        do {
            data = try read(name)
        } catch {
            throw SDKError(.modelFile, "cannot read \(what) \(name): \(error.localizedDescription)")
        }
        guard let found = data else {
            throw SDKError(.modelFile, "\(what) \(name) is missing; copy it from the export folder (the manifest's "
                + "model.tokenizer names it; ios_demo/sync_assets.sh does)")
        }
        return found
    }
}
