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

    func testHtmlUnescapeIsPythons() {
        XCTAssertEqual(TextClean.htmlUnescape("&amp;").unicodeScalars.map { $0.value }, "&".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&amp").unicodeScalars.map { $0.value }, "&".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&ampx").unicodeScalars.map { $0.value }, "&x".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&AMP;").unicodeScalars.map { $0.value }, "&".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&notin;").unicodeScalars.map { $0.value }, "\u{2209}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&notit;").unicodeScalars.map { $0.value }, "\u{AC}it;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#65;").unicodeScalars.map { $0.value }, "A".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#x41;").unicodeScalars.map { $0.value }, "A".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#X41").unicodeScalars.map { $0.value }, "A".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#0;").unicodeScalars.map { $0.value }, "\u{FFFD}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#128;").unicodeScalars.map { $0.value }, "\u{20AC}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#x110000;").unicodeScalars.map { $0.value }, "\u{FFFD}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#xD800;").unicodeScalars.map { $0.value }, "\u{FFFD}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#11;").unicodeScalars.map { $0.value }, "".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#99999999999999999999;").unicodeScalars.map { $0.value }, "\u{FFFD}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#;").unicodeScalars.map { $0.value }, "&#;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#x;").unicodeScalars.map { $0.value }, "&#x;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&").unicodeScalars.map { $0.value }, "&".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("a&b").unicodeScalars.map { $0.value }, "a&b".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("& amp;").unicodeScalars.map { $0.value }, "& amp;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&bogus;").unicodeScalars.map { $0.value }, "&bogus;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&lt&gt").unicodeScalars.map { $0.value }, "<>".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&#0065;&#65a").unicodeScalars.map { $0.value }, "AAa".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&acE;").unicodeScalars.map { $0.value }, "\u{223E}\u{333}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&aa;").unicodeScalars.map { $0.value }, "&aa;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&caf\u{E9};").unicodeScalars.map { $0.value }, "&caf\u{E9};".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;").unicodeScalars.map { $0.value }, "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("&amp;amp;").unicodeScalars.map { $0.value }, "&amp;".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.htmlUnescape("x&#x1F642;y").unicodeScalars.map { $0.value }, "x\u{1F642}y".unicodeScalars.map { $0.value })
    }

    func testLowerIsPythons() {
        XCTAssertEqual(TextClean.lower("\u{39F}\u{394}\u{39F}\u{3A3}. \u{3A3}\u{391} \u{130}").unicodeScalars.map { $0.value }, "\u{3BF}\u{3B4}\u{3BF}\u{3C2}. \u{3C3}\u{3B1} i\u{307}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{3A3}").unicodeScalars.map { $0.value }, "\u{3C3}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{391}\u{3A3}").unicodeScalars.map { $0.value }, "\u{3B1}\u{3C2}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{391}\u{3A3}'").unicodeScalars.map { $0.value }, "\u{3B1}\u{3C2}'".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{391}\u{3A3}'\u{392}").unicodeScalars.map { $0.value }, "\u{3B1}\u{3C3}'\u{3B2}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{391}'\u{3A3}").unicodeScalars.map { $0.value }, "\u{3B1}'\u{3C2}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{3A3}\u{308}\u{391}").unicodeScalars.map { $0.value }, "\u{3C3}\u{308}\u{3B1}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{391}\u{3A3}\u{308}").unicodeScalars.map { $0.value }, "\u{3B1}\u{3C2}\u{308}".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("Ab \u{3A3}\u{391}\u{3A3} \u{391}\u{3A3}1").unicodeScalars.map { $0.value }, "ab \u{3C3}\u{3B1}\u{3C2} \u{3B1}\u{3C2}1".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.lower("\u{1C5} \u{216B} \u{DF} \u{1E9E} \u{FF21}\u{FF22}").unicodeScalars.map { $0.value }, "\u{1C6} \u{217B} \u{DF} \u{DF} \u{FF41}\u{FF42}".unicodeScalars.map { $0.value })
    }

    func testWhitespaceIsPythons() {
        XCTAssertEqual(TextClean.collapseWhitespace("  a \t b\u{A0}c\u{3000}d\u{200B}e\u{1C}f\u{85}g  ").unicodeScalars.map { $0.value }, "a b c d\u{200B}e f g".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.collapseWhitespace("").unicodeScalars.map { $0.value }, "".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.collapseWhitespace("   ").unicodeScalars.map { $0.value }, "".unicodeScalars.map { $0.value })
        XCTAssertEqual(TextClean.collapseWhitespace("x").unicodeScalars.map { $0.value }, "x".unicodeScalars.map { $0.value })
        let pythonSpaces: Set<UInt32> = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                                         0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
                                         0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
        let wrong = (UInt32(0)...0x10FFFF).filter { TextClean.isSpace($0) != pythonSpaces.contains($0) }
        XCTAssertEqual(wrong, [], "str.isspace() differs at these code points")
    }

    func testSplitIsTheRegexOfOpenClip() {
        XCTAssertEqual(ClipBpeTokenizer.split("it's!'s <start_of_text>x 12ab \u{BD} '\u{17F}").map { Array($0.unicodeScalars) }, ["it", "'s", "!'", "s", "<start_of_text>", "x", "1", "2", "ab", "\u{BD}", "'\u{17F}"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("don't...you'll 're").map { Array($0.unicodeScalars) }, ["don", "'t", "...", "you", "'ll", "'re"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("<end_of_text><start_of_text>").map { Array($0.unicodeScalars) }, ["<end_of_text>", "<start_of_text>"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("a_b-c 3.5% \u{1F642}\u{1F642} \u{65E5}\u{672C}\u{8A9E}").map { Array($0.unicodeScalars) }, ["a", "_", "b", "-", "c", "3", ".", "5", "%", "\u{1F642}\u{1F642}", "\u{65E5}\u{672C}\u{8A9E}"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("'''s").map { Array($0.unicodeScalars) }, ["'''", "s"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("<start_of_textx>").map { Array($0.unicodeScalars) }, ["<", "start", "_", "of", "_", "textx", ">"].map { Array($0.unicodeScalars) })
        XCTAssertEqual(ClipBpeTokenizer.split("i'm'd've").map { Array($0.unicodeScalars) }, ["i", "'m", "'d", "'ve"].map { Array($0.unicodeScalars) })
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
            let data = try Data(contentsOf: GoldenFiles.url(GoldenFiles.manifestFile, in: folder))
            var obj = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
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
