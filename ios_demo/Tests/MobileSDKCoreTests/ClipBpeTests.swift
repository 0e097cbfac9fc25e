import Foundation
import MobileSDKCore
import XCTest

/// The CLIP BPE tokenizer's rules, each against values printed by Python (html.unescape,
/// str.lower, str.split, open_clip's SimpleTokenizer and its regex), compared as Unicode scalars;
/// the merges-file cases read tests/golden_bpe. android_demo: `ClipBpeTokenizerTest`.
final class ClipBpeTests: XCTestCase {
    private var bpeFolder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent(GoldenFiles.bpeGoldenRelativePath).standardizedFileURL
    }

    /// `got` and `want` are the same Unicode scalars (Swift's String == also equates canonically
    /// equivalent spellings, Python's does not).
    private func assertSameScalars(_ got: String, _ want: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.unicodeScalars.map { $0.value }, want.unicodeScalars.map { $0.value }, file: file, line: line)
    }

    /// The same for lists of strings, string by string.
    private func assertSameScalars(_ got: [String], _ want: [String],
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.map { Array($0.unicodeScalars) }, want.map { Array($0.unicodeScalars) }, file: file, line: line)
    }

    func testHtmlUnescapeIsPythons() {
        assertSameScalars(TextClean.htmlUnescape("&amp;"), "&")
        assertSameScalars(TextClean.htmlUnescape("&amp"), "&")
        assertSameScalars(TextClean.htmlUnescape("&ampx"), "&x")
        assertSameScalars(TextClean.htmlUnescape("&AMP;"), "&")
        assertSameScalars(TextClean.htmlUnescape("&notin;"), "\u{2209}")
        assertSameScalars(TextClean.htmlUnescape("&notit;"), "\u{AC}it;")
        assertSameScalars(TextClean.htmlUnescape("&#65;"), "A")
        assertSameScalars(TextClean.htmlUnescape("&#x41;"), "A")
        assertSameScalars(TextClean.htmlUnescape("&#X41"), "A")
        assertSameScalars(TextClean.htmlUnescape("&#0;"), "\u{FFFD}")
        assertSameScalars(TextClean.htmlUnescape("&#128;"), "\u{20AC}")
        assertSameScalars(TextClean.htmlUnescape("&#x110000;"), "\u{FFFD}")
        assertSameScalars(TextClean.htmlUnescape("&#xD800;"), "\u{FFFD}")
        assertSameScalars(TextClean.htmlUnescape("&#11;"), "")
        assertSameScalars(TextClean.htmlUnescape("&#99999999999999999999;"), "\u{FFFD}")
        assertSameScalars(TextClean.htmlUnescape("&#;"), "&#;")
        assertSameScalars(TextClean.htmlUnescape("&#x;"), "&#x;")
        assertSameScalars(TextClean.htmlUnescape("&"), "&")
        assertSameScalars(TextClean.htmlUnescape("a&b"), "a&b")
        assertSameScalars(TextClean.htmlUnescape("& amp;"), "& amp;")
        assertSameScalars(TextClean.htmlUnescape("&bogus;"), "&bogus;")
        assertSameScalars(TextClean.htmlUnescape("&lt&gt"), "<>")
        assertSameScalars(TextClean.htmlUnescape("&#0065;&#65a"), "AAa")
        assertSameScalars(TextClean.htmlUnescape("&acE;"), "\u{223E}\u{333}")
        assertSameScalars(TextClean.htmlUnescape("&aa;"), "&aa;")
        assertSameScalars(TextClean.htmlUnescape("&caf\u{E9};"), "&caf\u{E9};")
        assertSameScalars(TextClean.htmlUnescape("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"), "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;")
        assertSameScalars(TextClean.htmlUnescape("&amp;amp;"), "&amp;")
        assertSameScalars(TextClean.htmlUnescape("x&#x1F642;y"), "x\u{1F642}y")
    }

    func testLowerIsPythons() {
        assertSameScalars(TextClean.lower("\u{39F}\u{394}\u{39F}\u{3A3}. \u{3A3}\u{391} \u{130}"), "\u{3BF}\u{3B4}\u{3BF}\u{3C2}. \u{3C3}\u{3B1} i\u{307}")
        assertSameScalars(TextClean.lower("\u{3A3}"), "\u{3C3}")
        assertSameScalars(TextClean.lower("\u{391}\u{3A3}"), "\u{3B1}\u{3C2}")
        assertSameScalars(TextClean.lower("\u{391}\u{3A3}'"), "\u{3B1}\u{3C2}'")
        assertSameScalars(TextClean.lower("\u{391}\u{3A3}'\u{392}"), "\u{3B1}\u{3C3}'\u{3B2}")
        assertSameScalars(TextClean.lower("\u{391}'\u{3A3}"), "\u{3B1}'\u{3C2}")
        assertSameScalars(TextClean.lower("\u{3A3}\u{308}\u{391}"), "\u{3C3}\u{308}\u{3B1}")
        assertSameScalars(TextClean.lower("\u{391}\u{3A3}\u{308}"), "\u{3B1}\u{3C2}\u{308}")
        assertSameScalars(TextClean.lower("Ab \u{3A3}\u{391}\u{3A3} \u{391}\u{3A3}1"), "ab \u{3C3}\u{3B1}\u{3C2} \u{3B1}\u{3C2}1")
        assertSameScalars(TextClean.lower("\u{1C5} \u{216B} \u{DF} \u{1E9E} \u{FF21}\u{FF22}"), "\u{1C6} \u{217B} \u{DF} \u{DF} \u{FF41}\u{FF42}")
    }

    func testWhitespaceIsPythons() {
        assertSameScalars(TextClean.collapseWhitespace("  a \t b\u{A0}c\u{3000}d\u{200B}e\u{1C}f\u{85}g  "), "a b c d\u{200B}e f g")
        assertSameScalars(TextClean.collapseWhitespace(""), "")
        assertSameScalars(TextClean.collapseWhitespace("   "), "")
        assertSameScalars(TextClean.collapseWhitespace("x"), "x")
        let pythonSpaces: Set<UInt32> = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                                         0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
                                         0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
        let wrong = (UInt32(0)...0x10FFFF).filter { TextClean.isSpace($0) != pythonSpaces.contains($0) }
        XCTAssertEqual(wrong, [], "str.isspace() differs at these code points")
    }

    func testSplitIsTheRegexOfOpenClip() {
        assertSameScalars(ClipBpeTokenizer.split("it's!'s <start_of_text>x 12ab \u{BD} '\u{17F}"), ["it", "'s", "!'", "s", "<start_of_text>", "x", "1", "2", "ab", "\u{BD}", "'\u{17F}"])
        assertSameScalars(ClipBpeTokenizer.split("don't...you'll 're"), ["don", "'t", "...", "you", "'ll", "'re"])
        assertSameScalars(ClipBpeTokenizer.split("<end_of_text><start_of_text>"), ["<end_of_text>", "<start_of_text>"])
        assertSameScalars(ClipBpeTokenizer.split("a_b-c 3.5% \u{1F642}\u{1F642} \u{65E5}\u{672C}\u{8A9E}"), ["a", "_", "b", "-", "c", "3", ".", "5", "%", "\u{1F642}\u{1F642}", "\u{65E5}\u{672C}\u{8A9E}"])
        assertSameScalars(ClipBpeTokenizer.split("'''s"), ["'''", "s"])
        assertSameScalars(ClipBpeTokenizer.split("<start_of_textx>"), ["<", "start", "_", "of", "_", "textx", ">"])
        assertSameScalars(ClipBpeTokenizer.split("i'm'd've"), ["i", "'m", "'d", "'ve"])
    }

    func testEncodesLikeSimpleTokenizerAtAnyContextLength() throws {
        let manifest = try GoldenFiles.manifest(in: bpeFolder)
        let gz = try Data(contentsOf: bpeFolder.appendingPathComponent(try XCTUnwrap(manifest.model.tokenizer.mergesFile)))
        #if canImport(Compression)
        let text = try XCTUnwrap(String(data: try ClipBpeTokenizer.gunzip(gz, name: "merges"), encoding: .utf8))
        let tok = try ClipBpeTokenizer(merges: text, contextLength: 8)
        let cases: [(String, [Int32])] = [  // SimpleTokenizer(context_length=8)
            ("antidisestablishmentarianism", [49406, 3120, 4262, 7726, 12658, 1585, 44351, 49407]),
            ("a b c d e f", [49406, 320, 321, 322, 323, 324, 325, 49407]),
            ("a b c d e f g", [49406, 320, 321, 322, 323, 324, 325, 49407]),
            ("", [49406, 49407, 0, 0, 0, 0, 0, 0]),
            ("<end_of_text>", [49406, 49407, 49407, 0, 0, 0, 0, 0]),
            ("hello world", [49406, 3306, 1002, 49407, 0, 0, 0, 0]),
        ]
        for (t, want) in cases {
            XCTAssertEqual(tok.encode(t), want, "ids of '\(t)'")
        }
        XCTAssertEqual(tok.vocabSize, 49408)
        XCTAssertEqual([tok.sotId, tok.eotId, tok.padId], [49406, 49407, 0])
        XCTAssertThrowsError(try ClipBpeTokenizer(merges: String(text.prefix(text.count / 8)), contextLength: 24))
        XCTAssertThrowsError(try ClipBpeTokenizer(merges: text, contextLength: 1))
        #else
        throw XCTSkip("inflating the gzip merges file needs Apple's Compression framework")
        #endif
    }

    func testWrongMergesFilesAreClearErrors() throws {
        let manifest = try GoldenFiles.manifest(in: bpeFolder)
        var gz = try Data(contentsOf: bpeFolder.appendingPathComponent(try XCTUnwrap(manifest.model.tokenizer.mergesFile)))
        gz[gz.count / 2] ^= 1
        XCTAssertThrowsError(try ClipBpeTokenizer.fromManifest(manifest, gzData: gz)) { error in
            XCTAssertEqual((error as? SDKError)?.kind, .modelFile)
            XCTAssertTrue((error as? SDKError)?.message.contains("merges_sha256") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try Tokenizers.fromManifest(manifest) { _ in nil }) { error in
            XCTAssertEqual((error as? SDKError)?.kind, .modelFile)
            XCTAssertTrue((error as? SDKError)?.message.contains("is missing") ?? false, "\(error)")
        }
    }

    /// The tokenizer kinds and resize rules the app lacks are clear errors, named.
    func testUnsupportedKindsAndRulesAreClearErrors() throws {
        for folder in GoldenFiles.folders {
            var obj = try GoldenFiles.manifestObject(in: folder)
            var model = try XCTUnwrap(obj["model"] as? [String: Any])
            var tok = try XCTUnwrap(model["tokenizer"] as? [String: Any])
            var pre = try XCTUnwrap(model["preprocessing"] as? [String: Any])
            tok["kind"] = "hf"
            tok["tokenizer_file"] = "tokenizer.json"
            pre["resize"] = "squash"
            model["tokenizer"] = tok
            model["preprocessing"] = pre
            obj["model"] = model
            let edited = try Manifest.parse(try JSONSerialization.data(withJSONObject: obj), source: "m.json")
            XCTAssertThrowsError(try Tokenizers.fromManifest(edited) { _ in Data() }) { error in
                XCTAssertEqual((error as? SDKError)?.kind, .text)
                XCTAssertTrue((error as? SDKError)?.message.contains("tokenizer kind 'hf' is not supported") ?? false, "\(error)")
            }
            XCTAssertEqual(edited.model.preprocessing.resizeRule, "squash")
            XCTAssertThrowsError(try Preprocess.preprocess(try RawImage(width: 2, height: 2, mode: .RGB,
                                                                        data: [UInt8](repeating: 0, count: 12)),
                                                           spec: edited.model.preprocessing)) { error in
                XCTAssertEqual((error as? SDKError)?.kind, .manifest)
                XCTAssertTrue((error as? SDKError)?.message.contains("resize rule 'squash'") ?? false, "\(error)")
            }
            tok["kind"] = "sentencepiece"
            model["tokenizer"] = tok
            obj["model"] = model
            XCTAssertThrowsError(try Manifest.parse(try JSONSerialization.data(withJSONObject: obj), source: "m.json"))
        }
    }
}
