import Foundation
import MobileSDKCore
import XCTest

/// Small cases of the core with values computed by the Python reference (mobile_sdk.preprocess,
/// PIL's exif_transpose, hashlib), independent of tests/golden.
final class CoreTests: XCTestCase {
    func testSHA256KnownVectors() throws {
        XCTAssertEqual(Checksum.sha256Hex(of: [UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Checksum.sha256Hex(of: Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Checksum.sha256Hex(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A folder hashes as mobile_sdk.manifest.sha256_file does: sorted relative paths, each
        // path's bytes then the file's (hashlib: sha256(b"a.bin" + b"a" * 1000 + b"b/c" + b"x")).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("b"), withIntermediateDirectories: true)
        try Data(repeating: 0x61, count: 1000).write(to: dir.appendingPathComponent("a.bin"))
        try Data("x".utf8).write(to: dir.appendingPathComponent("b/c"))
        var whole = Data("a.bin".utf8)
        whole.append(Data(repeating: 0x61, count: 1000))
        whole.append(Data("b/cx".utf8))
        XCTAssertEqual(try Checksum.sha256Hex(ofFileAt: dir), Checksum.sha256Hex(of: whole))
    }

    func testSplitLinesIsPythonSplitlines() {
        XCTAssertEqual(WordTokenizer.splitLines("a\nb\r\nc\rd\n"), ["a", "b", "c", "d"])
        XCTAssertEqual(WordTokenizer.splitLines("a\n\nb"), ["a", "", "b"])
        XCTAssertEqual(WordTokenizer.splitLines(""), [])
        XCTAssertEqual(WordTokenizer.splitLines("x\u{2028}y\u{0C}z"), ["x", "y", "z"])
    }

    func testSplitWords() {
        XCTAssertEqual(WordTokenizer.splitWords("A Large GREEN star, at the bottom!"),
                       ["a", "large", "green", "star", "at", "the", "bottom"])
        XCTAssertEqual(WordTokenizer.splitWords("café-Ünïcode\tx_y"), ["café", "Ünïcode", "x", "y"])
        XCTAssertEqual(WordTokenizer.splitWords("  ...  "), [])
    }

    func testEncodePadsAndTruncates() throws {
        let tok = try WordTokenizer(vocab: ["<pad>", "<sot>", "<eot>", "<unk>", "a", "red", "circle"], contextLength: 5)
        XCTAssertEqual(tok.encode("A red circle"), [1, 4, 5, 6, 2])
        XCTAssertEqual(tok.encode("a red circle a red"), [1, 4, 5, 6, 2])
        XCTAssertEqual(tok.encode("a zebra"), [1, 4, 3, 2, 0])
        XCTAssertEqual(tok.encode(""), [1, 2, 0, 0, 0])
        XCTAssertEqual(tok.decode([1, 4, 3, 2, 0]), "a <unk>")
        XCTAssertThrowsError(try WordTokenizer(vocab: ["a", "b"], contextLength: 5))
        XCTAssertThrowsError(try WordTokenizer(vocab: ["<pad>", "<sot>", "<eot>", "<unk>", "a", "a"], contextLength: 5))
        XCTAssertThrowsError(try WordTokenizer(vocab: ["<pad>", "<sot>", "<eot>", "<unk>"], contextLength: 1))
    }

    /// A 3x2 image whose red channel is 10*y + x, through every EXIF orientation (PIL's results).
    func testOrientationIsExifTranspose() throws {
        var hwc: [UInt8] = []
        for y in 0..<2 {
            for x in 0..<3 {
                hwc += [UInt8(10 * y + x), UInt8(100 + 10 * y + x), 7]
            }
        }
        let src = try RGBImage(width: 3, height: 2, hwc: hwc)
        let expected: [Int: (Int, Int, [UInt8])] = [
            1: (3, 2, [0, 1, 2, 10, 11, 12]),
            2: (3, 2, [2, 1, 0, 12, 11, 10]),
            3: (3, 2, [12, 11, 10, 2, 1, 0]),
            4: (3, 2, [10, 11, 12, 0, 1, 2]),
            5: (2, 3, [0, 10, 1, 11, 2, 12]),
            6: (2, 3, [10, 0, 11, 1, 12, 2]),
            7: (2, 3, [12, 2, 11, 1, 10, 0]),
            8: (2, 3, [2, 12, 1, 11, 0, 10]),
        ]
        for (o, want) in expected {
            let out = try Preprocess.orient(src, o)
            XCTAssertEqual(out.width, want.0, "orientation \(o)")
            XCTAssertEqual(out.height, want.1, "orientation \(o)")
            let red = stride(from: 0, to: out.hwc.count, by: 3).map { out.hwc[$0] }
            XCTAssertEqual(red, want.2, "orientation \(o)")
        }
    }

    func testCenterCropAreaResize() throws {
        // 5x3 (crop x0 = 1) -> 2x2, and 2x2 -> 3x3 (upscale): mobile_sdk.preprocess.center_crop_resize.
        let img: [UInt8] = [95, 130, 194, 217, 207, 235, 15, 163, 33, 215, 217, 130, 248, 189, 16, 69, 184, 232, 205,
                            78, 169, 61, 125, 10, 29, 240, 66, 19, 182, 39, 59, 4, 59, 81, 222, 44, 120, 122, 50, 208,
                            78, 28, 64, 166, 121]
        XCTAssertEqual(try Preprocess.centerCropResize(RGBImage(width: 5, height: 3, hwc: img), size: 2),
                       [152, 159, 150, 112, 200, 81, 115, 157, 69, 132, 129, 39])
        let corner: [UInt8] = [95, 130, 194, 217, 207, 235, 69, 184, 232, 205, 78, 169]
        XCTAssertEqual(try Preprocess.centerCropResize(RGBImage(width: 2, height: 2, hwc: corner), size: 3),
                       [95, 130, 194, 156, 169, 215, 217, 207, 235, 82, 157, 213, 147, 150, 208, 211, 143, 202, 69, 184,
                        232, 137, 131, 201, 205, 78, 169])
        // Rounding: (sum + s*s/2) / (s*s): 1/4 -> 0, 2/4 -> 1.
        XCTAssertEqual(try Preprocess.centerCropResize(RGBImage(width: 2, height: 2, hwc: [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
                                                       size: 1), [0, 0, 0])
        XCTAssertEqual(try Preprocess.centerCropResize(RGBImage(width: 2, height: 2, hwc: [0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0]),
                                                       size: 1), [1, 1, 1])
        XCTAssertEqual(try Preprocess.toNCHW([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], size: 2),
                       [1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12])
    }

    func testModeConversions() throws {
        // RGBA over white, and 16-bit grey: mobile_sdk.preprocess.to_rgb_array.
        let rgba = try RawImage(width: 4, height: 1, mode: .RGBA,
                                data: [200, 100, 0, 0, 200, 100, 0, 128, 200, 100, 0, 255, 13, 77, 250, 1])
        XCTAssertEqual(try Preprocess.toRGB(rgba).hwc, [255, 255, 255, 227, 177, 127, 200, 100, 0, 254, 254, 255])
        let grey16 = try RawImage(width: 9, height: 1, mode: .I16, data16: [0, 1, 128, 129, 257, 32767, 32768, 65534, 65535])
        let g = try Preprocess.toRGB(grey16).hwc
        XCTAssertEqual(stride(from: 0, to: g.count, by: 3).map { g[$0] }, [0, 0, 0, 1, 1, 127, 128, 255, 255])
        var palette = RawImage.greyRampPalette()
        palette[3] = 10
        palette[4] = 20
        palette[5] = 30
        let p = try RawImage(width: 2, height: 1, mode: .P, data: [1, 200], palette: palette)
        XCTAssertEqual(try Preprocess.toRGB(p).hwc, [10, 20, 30, 200, 200, 200])
        var alpha = [UInt8](repeating: 255, count: 256)
        alpha[1] = 0
        let pa = try RawImage(width: 2, height: 1, mode: .P, data: [1, 200], palette: palette, paletteAlpha: alpha)
        XCTAssertEqual(try Preprocess.toRGB(pa).hwc, [255, 255, 255, 200, 200, 200])
        let la = try RawImage(width: 1, height: 1, mode: .LA, data: [0, 128])
        XCTAssertEqual(try Preprocess.toRGB(la).hwc, [127, 127, 127])
    }

    func testRankingSoftmax() {
        XCTAssertEqual(Scoring.ranking([0.5, 2.0, 0.5, 3.0]), [3, 1, 0, 2])
        XCTAssertEqual(Scoring.ranking([Double.nan, 1, 0]), [1, 2, 0])
        let p = Scoring.softmax([1, 2, 3])
        XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(p[2], 0.6652409557748219, accuracy: 1e-12)
        XCTAssertEqual(Scoring.normalize([0, 0]), [0, 0])
        XCTAssertEqual(try Scoring.score([3, 4], [6, 8], logitScale: 10), 10, accuracy: 1e-12)
        XCTAssertThrowsError(try Scoring.scores([[1, 2]], [[1, 2, 3]], logitScale: 1))
    }
}
