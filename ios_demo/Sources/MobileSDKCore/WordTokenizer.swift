import Foundation

/// The word-level tokenizer of `mobile_sdk/tokenizer.py` (manifest tokenizer kind "word"), rule
/// for rule (android_demo `WordTokenizer`):
/// 1. ASCII letters are lower-cased (A-Z -> a-z); nothing else changes.
/// 2. Separators are ASCII whitespace (" \t\n\r\u{0B}\u{0C}") and ASCII punctuation
///    (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~); a word is a maximal run of other characters.
/// 3. A word in the vocabulary maps to its line number, any other word to <unk>.
/// 4. ids = [<sot>] + word ids + [<eot>], right-padded with <pad> to context_length; longer text
///    keeps its first context_length - 2 words and still ends with <eot>.
/// Words are compared as Unicode scalar sequences (their UTF-8 bytes), as Python compares code
/// points; Swift's `String ==` would also equate canonically equivalent spellings.
public struct WordTokenizer: Tokenizer {
    public static let kindName = "word"
    public static let pad = "<pad>", sot = "<sot>", eot = "<eot>", unk = "<unk>"
    public static let specials = [pad, sot, eot, unk]
    public static let whitespace = " \t\n\r\u{0B}\u{0C}"
    public static let punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

    private static let separator: [Bool] = {
        var table = [Bool](repeating: false, count: 128)
        for scalar in (whitespace + punctuation).unicodeScalars {
            table[Int(scalar.value)] = true
        }
        return table
    }()

    public let vocab: [String]
    private let index: [[UInt8]: Int32]
    public let contextLength: Int
    public let padId: Int32, sotId: Int32, eotId: Int32, unkId: Int32

    public init(vocab: [String], contextLength: Int) throws {
        guard vocab.count >= WordTokenizer.specials.count, Array(vocab[0..<4]) == WordTokenizer.specials else {
            throw SDKError(.text, "vocabulary must start with \(WordTokenizer.specials), got \(Array(vocab.prefix(4)))")
        }
        guard contextLength >= 2 else {
            throw SDKError(.text, "context_length must be >= 2 (room for <sot> and <eot>), got \(contextLength)")
        }
        var idx: [[UInt8]: Int32] = [:]
        idx.reserveCapacity(vocab.count)
        for (i, word) in vocab.enumerated() {
            if idx.updateValue(Int32(i), forKey: Array(word.utf8)) != nil {
                throw SDKError(.text, "vocabulary has duplicate entries ('\(word)')")
            }
        }
        self.vocab = vocab
        self.index = idx
        self.contextLength = contextLength
        self.padId = 0
        self.sotId = 1
        self.eotId = 2
        self.unkId = 3
    }

    /// A tokenizer for the model of `manifest`, from the vocabulary file's bytes: checks the
    /// sha256, size and special ids the manifest records, so a wrong vocab.txt is a clear error.
    public static func fromManifest(_ manifest: Manifest, vocabData: Data) throws -> WordTokenizer {
        let t = manifest.model.tokenizer
        let name = t.vocabFile ?? "vocab.txt"
        try Tokenizers.checkSha256(vocabData, t.vocabSha256, file: "vocabulary \(name)", key: "vocab_sha256",
                                   fix: "bundle the vocab.txt of the same export")
        let text = try Tokenizers.utf8Text(vocabData, file: "vocabulary \(name)")
        let tok = try WordTokenizer(vocab: splitLines(text), contextLength: t.contextLength)
        if let size = t.vocabSize, size != tok.vocab.count {
            throw SDKError(.text, "vocabulary \(name) has \(tok.vocab.count) entries, the manifest says \(size)")
        }
        if t.padId != Int(tok.padId) || t.sotId != Int(tok.sotId) || t.eotId != Int(tok.eotId)
            || (t.unkId ?? -1) != Int(tok.unkId) {
            throw SDKError(.text, "special token ids of \(name) differ from the manifest's")
        }
        return tok
    }

    /// Python's `str.splitlines()`: the line boundaries it knows, no empty last line. Works on
    /// Unicode scalars: a Swift Character would merge "\r\n" into one.
    public static func splitLines(_ s: String) -> [String] {
        var out: [String] = []
        var cur = String.UnicodeScalarView()
        let scalars = Array(s.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i].value
            let eol = c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E
                || c == 0x85 || c == 0x2028 || c == 0x2029
            if !eol {
                cur.append(scalars[i])
                i += 1
                continue
            }
            out.append(String(cur))
            cur = String.UnicodeScalarView()
            i += (c == 0x0D && i + 1 < scalars.count && scalars[i + 1].value == 0x0A) ? 2 : 1
        }
        if !cur.isEmpty {
            out.append(String(cur))
        }
        return out
    }

    /// Rules 1-2: lower-case ASCII letters, split on ASCII whitespace and punctuation.
    public static func splitWords(_ text: String) -> [String] {
        var words: [String] = []
        var cur = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            var ch = scalar
            if ch.value >= 0x41 && ch.value <= 0x5A, let lower = Unicode.Scalar(ch.value + 0x20) {
                ch = lower
            }
            if ch.value < 128 && separator[Int(ch.value)] {
                if !cur.isEmpty {
                    words.append(String(cur))
                    cur = String.UnicodeScalarView()
                }
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty {
            words.append(String(cur))
        }
        return words
    }

    public var kind: String { WordTokenizer.kindName }

    /// One text -> int32 ids of length context_length.
    public func encode(_ text: String) -> [Int32] {
        let words = WordTokenizer.splitWords(text).prefix(contextLength - 2)
        let wordIds = words.map { index[Array($0.utf8)] ?? unkId }
        return Tokenizers.frame(wordIds, contextLength: contextLength, sot: sotId, eot: eotId, pad: padId)
    }

    /// ids -> the words they stand for (specials dropped, stops at <eot>).
    public func decode(_ ids: [Int32]) -> String {
        var words: [String] = []
        for i in ids {
            if i == eotId {
                break
            }
            if i != sotId && i != padId {
                words.append(i >= 0 && Int(i) < vocab.count ? vocab[Int(i)] : WordTokenizer.unk)
            }
        }
        return words.joined(separator: " ")
    }

    public var vocabSize: Int { vocab.count }
}
