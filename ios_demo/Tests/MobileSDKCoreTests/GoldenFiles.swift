import Foundation
import MobileSDKCore

/// The repository's golden folders, read in place: tests/golden (manifest.json, golden.json,
/// golden/*.png, vocab.txt of the shipped model, word tokenizer) and tests/golden_bpe (the same
/// for an open_clip-architecture model with the CLIP BPE tokenizer and its merges file). This file
/// is ios_demo/Tests/MobileSDKCoreTests/GoldenFiles.swift, so the folders are the relative paths
/// below from here (ios_demo/check.py checks that they resolve). MOBILE_SDK_GOLDEN_DIR replaces
/// both with one folder (a copy, for a run away from the checkout).
enum GoldenFiles {
    static let goldenRelativePath = "../../../tests/golden"
    static let bpeGoldenRelativePath = "../../../tests/golden_bpe"
    static let manifestFile = "manifest.json"
    static let goldenFile = "golden.json"

    private static var here: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent() }

    /// Every folder the golden tests replay, the shipped model's first.
    static var folders: [URL] {
        if let dir = ProcessInfo.processInfo.environment["MOBILE_SDK_GOLDEN_DIR"], !dir.isEmpty {
            return [URL(fileURLWithPath: dir)]
        }
        return [goldenRelativePath, bpeGoldenRelativePath].map {
            here.appendingPathComponent($0).standardizedFileURL
        }
    }

    /// The shipped model's folder (tests/golden), which the error tests edit copies of.
    static var folder: URL { folders[0] }

    static func url(_ name: String, in folder: URL = folder) -> URL {
        folder.appendingPathComponent(name)
    }

    static func manifest(in folder: URL = folder) throws -> Manifest {
        try Manifest.load(url(manifestFile, in: folder))
    }

    static func golden(in folder: URL = folder) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url(goldenFile, in: folder)))
    }
}

/// golden.json as `mobile_sdk/golden.py` `build_golden` writes it.
struct Golden: Decodable {
    struct Image: Decodable {
        let file: String
        let pngSha256: String
        let mode: String
        let size: [Int]
        let pixelsSha256: String
        let pixels: [UInt8]

        enum CodingKeys: String, CodingKey {
            case file
            case pngSha256 = "png_sha256"
            case mode
            case size
            case pixelsSha256 = "pixels_sha256"
            case pixels
        }
    }

    struct Text: Decodable {
        let text: String
        let ids: [Int32]

        enum CodingKeys: String, CodingKey {
            case text
            case ids
        }
    }

    struct Prompts: Decodable {
        let task: String
        let texts: [String]
        let ids: [[Int32]]

        enum CodingKeys: String, CodingKey {
            case task
            case texts
            case ids
        }
    }

    /// One runtime's results: eager PyTorch, or one exported artifact pair ("tflite/int8", ...).
    struct Block: Decodable {
        let imageEmbeddings: [[Double]]
        let textEmbeddings: [[Double]]
        let promptEmbeddings: [[Double]]
        let zeroshotScores: [[Double]]
        let zeroshotProbs: [[Double]]
        let zeroshotRanking: [[Int]]
        let searchRanking: [[Int]]
        let note: String?

        enum CodingKeys: String, CodingKey {
            case imageEmbeddings = "image_embeddings"
            case textEmbeddings = "text_embeddings"
            case promptEmbeddings = "prompt_embeddings"
            case zeroshotScores = "zeroshot_scores"
            case zeroshotProbs = "zeroshot_probs"
            case zeroshotRanking = "zeroshot_ranking"
            case searchRanking = "search_ranking"
            case note
        }
    }

    /// One runtime's images scored against the label bank: (images, classes).
    struct BankResult: Decodable {
        let scores: [[Double]]
        let probs: [[Double]]
        let ranking: [[Int]]

        enum CodingKeys: String, CodingKey {
            case scores
            case probs
            case ranking
        }
    }

    /// Present when the export has a label bank (`--label-bank`): per results block, every golden
    /// image against the bank's classes.
    struct LabelBankBlock: Decodable {
        let file: String
        let sha256: String
        let classes: [String]
        let results: [String: BankResult]

        enum CodingKeys: String, CodingKey {
            case file
            case sha256
            case classes
            case results
        }
    }

    let schemaVersion: Int
    let logitScale: Double
    let images: [Image]
    let pixelsLayout: String
    let texts: [Text]
    let prompts: Prompts
    let results: [String: Block]
    let labelBank: LabelBankBlock?

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case logitScale = "logit_scale"
        case images
        case pixelsLayout = "pixels_layout"
        case texts
        case prompts
        case results
        case labelBank = "label_bank"
    }
}
