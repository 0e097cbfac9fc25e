import Foundation
import MobileSDKCore

/// The repository's tests/golden folder (manifest.json, golden.json, golden/*.png, vocab.txt of the
/// shipped model), read in place: this file is ios_demo/Tests/MobileSDKCoreTests/GoldenFiles.swift,
/// so the folder is `goldenRelativePath` from here (ios_demo/check.py checks that it resolves).
/// MOBILE_SDK_GOLDEN_DIR overrides it (a copy of the folder, for a run away from the checkout).
enum GoldenFiles {
    static let goldenRelativePath = "../../../tests/golden"
    static let manifestFile = "manifest.json"
    static let goldenFile = "golden.json"
    static let vocabFile = "vocab.txt"

    static var folder: URL {
        if let dir = ProcessInfo.processInfo.environment["MOBILE_SDK_GOLDEN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent(goldenRelativePath).standardizedFileURL
    }

    static func url(_ name: String) -> URL {
        folder.appendingPathComponent(name)
    }

    static func manifest() throws -> Manifest {
        try Manifest.load(url(manifestFile))
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url(goldenFile)))
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

    let schemaVersion: Int
    let logitScale: Double
    let images: [Image]
    let pixelsLayout: String
    let texts: [Text]
    let prompts: Prompts
    let results: [String: Block]

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case logitScale = "logit_scale"
        case images
        case pixelsLayout = "pixels_layout"
        case texts
        case prompts
        case results
    }
}
