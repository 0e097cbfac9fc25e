import Foundation

/// open_clip's CLIP BPE tokenizer (`open_clip.tokenizer.SimpleTokenizer`, clean "lower"; manifest
/// tokenizer kind "clip_bpe"), reproducing its ids (android_demo `ClipBpeTokenizer`, step for step):
/// 1. Text: `TextClean.clean` (HTML unescape twice, whitespace collapsed, lower-cased). ftfy's
///    `fix_text` is skipped: it has no Swift port. It changes only damaged text (mojibake, curly
///    quotes, full-width or decomposed letters, control characters), so such text can give other
///    ids than Python's.
/// 2. Split (the regex `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
///    case-insensitive): see `split`.
/// 3. Each piece: its UTF-8 bytes as the byte-to-unicode symbols, the last one with `</w>`, merged
///    pair by pair in the order of the merges file; a literal `<start_of_text>` / `<end_of_text>`
///    is that special token.
/// 4. ids = [sot] + piece ids + [eot], cut to context_length with eot kept last, zero-padded.
/// The vocabulary is the 256 byte symbols, the same with `</w>`, one entry per merge (lines 1 to
/// 48894 of `bpe_simple_vocab_16e6.txt.gz`), then `<start_of_text>`, `<end_of_text>`.
public struct ClipBpeTokenizer: Tokenizer {
    public static let kindName = "clip_bpe"
    public static let sot = "<start_of_text>", eot = "<end_of_text>"
    /// Merges SimpleTokenizer reads: lines 1 ... 49152 - 256 - 2 of the file (line 0 is a header).
    public static let mergeCount = 49152 - 256 - 2
    private static let endOfWord = "</w>"

    /// bytes_to_unicode: byte -> (its position among the 256 symbols, the symbol's code point).
    private static let byteSymbols: (index: [Int], symbol: [UInt32]) = {
        var bs: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var cs: [UInt32] = bs.map { UInt32($0) }
        var n: UInt32 = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var index = [Int](repeating: 0, count: 256)
        for (i, b) in bs.enumerated() {
            index[b] = i
        }
        return (index, cs)
    }()

    public let contextLength: Int
    public let sotId: Int32, eotId: Int32, padId: Int32
    public let vocabSize: Int
    /// byte -> id of its symbol, and of its symbol + `</w>` (the last byte of a piece).
    private let byteId: [Int32], byteEndId: [Int32]
    /// (left id << 32 | right id) -> merge rank.
    private let ranks: [UInt64: Int32]
    /// merge rank -> the id of the merged symbol.
    private let merged: [Int32]

    public var kind: String { ClipBpeTokenizer.kindName }

    /// From the merges file's text (decompressed): its first `mergeCount` merges after the header
    /// line, as SimpleTokenizer slices them.
    public init(merges text: String, contextLength: Int) throws {
        guard contextLength >= 2 else {
            throw SDKError(.text, "context_length must be >= 2 (room for <start_of_text> and <end_of_text>), got "
                + "\(contextLength)")
        }
        let pairs = try ClipBpeTokenizer.readMerges(text)
        // Python's vocabulary dict: symbol -> its last index in the list (keys: UTF-8 bytes, so
        // canonically equivalent spellings stay apart, as in Python)
        var encoder: [[UInt8]: Int32] = [:]
        encoder.reserveCapacity(2 * (512 + ClipBpeTokenizer.mergeCount + 2))
        let symbols = ClipBpeTokenizer.byteSymbols.symbol.map { String(Unicode.Scalar($0)!) }
        for (i, sym) in symbols.enumerated() {
            encoder[Array(sym.utf8)] = Int32(i)
        }
        for (i, sym) in symbols.enumerated() {
            encoder[Array((sym + ClipBpeTokenizer.endOfWord).utf8)] = Int32(256 + i)
        }
        for (r, pair) in pairs.enumerated() {
            encoder[pair.0 + pair.1] = Int32(512 + r)
        }
        let next = Int32(512 + ClipBpeTokenizer.mergeCount)
        encoder[Array(ClipBpeTokenizer.sot.utf8)] = next
        encoder[Array(ClipBpeTokenizer.eot.utf8)] = next + 1
        sotId = next
        eotId = next + 1
        padId = 0
        vocabSize = Int(next) + 2
        self.contextLength = contextLength
        var byteId = [Int32](repeating: 0, count: 256), byteEndId = [Int32](repeating: 0, count: 256)
        for b in 0..<256 {
            let sym = symbols[ClipBpeTokenizer.byteSymbols.index[b]]
            byteId[b] = encoder[Array(sym.utf8)] ?? 0
            byteEndId[b] = encoder[Array((sym + ClipBpeTokenizer.endOfWord).utf8)] ?? 0
        }
        self.byteId = byteId
        self.byteEndId = byteEndId
        var ranks: [UInt64: Int32] = [:]
        ranks.reserveCapacity(2 * ClipBpeTokenizer.mergeCount)
        var merged = [Int32](repeating: 0, count: ClipBpeTokenizer.mergeCount)
        for (r, pair) in pairs.enumerated() {
            merged[r] = encoder[pair.0 + pair.1] ?? 0
            if let a = encoder[pair.0], let b = encoder[pair.1] {  // else no word can hold the pair
                ranks[ClipBpeTokenizer.key(a, b)] = Int32(r)  // a repeated pair keeps its last rank, as in Python
            }
        }
        self.ranks = ranks
        self.merged = merged
    }

    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Lines 1 ... mergeCount of the text ("\n"-separated), each split on whitespace into two
    /// symbols (as UTF-8 bytes).
    private static func readMerges(_ text: String) throws -> [([UInt8], [UInt8])] {
        var pairs: [([UInt8], [UInt8])] = []
        pairs.reserveCapacity(mergeCount)
        var lineNo = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if lineNo == 0 {  // the version header
                lineNo += 1
                continue
            }
            if pairs.count == mergeCount {
                break
            }
            let parts = TextClean.collapseWhitespace(String(decoding: line, as: UTF8.self)).split(separator: " ")
            guard parts.count == 2 else {
                throw SDKError(.text, "line \(lineNo) of the BPE merges file is not two symbols ('"
                    + String(decoding: line, as: UTF8.self) + "'); bundle the bpe_simple_vocab_16e6.txt.gz of the export")
            }
            pairs.append((Array(parts[0].utf8), Array(parts[1].utf8)))
            lineNo += 1
        }
        guard pairs.count == mergeCount else {
            throw SDKError(.text, "the BPE merges file has \(pairs.count) merges, CLIP's has at least \(mergeCount); "
                + "bundle the bpe_simple_vocab_16e6.txt.gz of the export")
        }
        return pairs
    }

    /// The tokenizer of `manifest` (kind clip_bpe) from the merges file's bytes (gzip, as the
    /// export writes it): checks its sha256 when the manifest has one, and the vocabulary size and
    /// special ids the manifest records.
    public static func fromManifest(_ manifest: Manifest, gzData: Data) throws -> ClipBpeTokenizer {
        let t = manifest.model.tokenizer
        let name = t.mergesFile ?? "bpe_simple_vocab_16e6.txt.gz"
        try Tokenizers.checkSha256(gzData, t.mergesSha256, file: "BPE merges file \(name)", key: "merges_sha256",
                                   fix: "bundle the one of the same export")
        let text = try Tokenizers.utf8Text(try gunzip(gzData, name: name), file: "BPE merges file \(name)")
        let tok = try ClipBpeTokenizer(merges: text, contextLength: t.contextLength)
        if let size = t.vocabSize, size != tok.vocabSize {
            throw SDKError(.text, "the BPE merges file \(name) makes \(tok.vocabSize) tokens, the manifest says "
                + "vocab_size \(size)")
        }
        if t.sotId != Int(tok.sotId) || t.eotId != Int(tok.eotId) || t.padId != Int(tok.padId) {
            throw SDKError(.text, "special token ids of \(name) (sot \(tok.sotId), eot \(tok.eotId), pad 0) differ "
                + "from the manifest's (sot \(t.sotId), eot \(t.eotId), pad \(t.padId))")
        }
        return tok
    }

    /// A gzip file's content (RFC 1952: one member; its DEFLATE data inflated by Apple's
    /// Compression framework, whose "zlib" algorithm is raw DEFLATE).
    public static func gunzip(_ gz: Data, name: String) throws -> Data {
        let b = [UInt8](gz)
        func bad(_ why: String) -> SDKError {
            SDKError(.modelFile, "BPE merges file \(name) is not a readable gzip file: \(why)")
        }
        guard b.count >= 18, b[0] == 0x1F, b[1] == 0x8B, b[2] == 8 else {
            throw bad("no gzip header")
        }
        let flags = b[3]
        var p = 10
        if flags & 0x04 != 0 {  // FEXTRA
            guard p + 2 <= b.count else { throw bad("truncated header") }
            p += 2 + Int(b[p]) + Int(b[p + 1]) << 8
        }
        for bit in [UInt8(0x08), UInt8(0x10)] where flags & bit != 0 {  // FNAME, FCOMMENT: zero-terminated
            while p < b.count && b[p] != 0 {
                p += 1
            }
            p += 1
        }
        if flags & 0x02 != 0 {  // FHCRC
            p += 2
        }
        guard p < b.count - 8 else {
            throw bad("truncated")
        }
        let size = Int(b[b.count - 4]) | Int(b[b.count - 3]) << 8 | Int(b[b.count - 2]) << 16 | Int(b[b.count - 1]) << 24
        #if canImport(Compression)  // Apple platforms: NSData's decompression is built on it
        let deflated = Data(b[p..<(b.count - 8)])
        do {
            let out = try (deflated as NSData).decompressed(using: .zlib) as Data
            guard out.count % (1 << 32) == size else {
                throw bad("inflated \(out.count) bytes, the gzip trailer says \(size)")
            }
            return out
        } catch let e as SDKError {
            throw e
        } catch {
            throw bad("\(error.localizedDescription)")
        }
        #else
        throw bad("this platform has no Compression framework to inflate it (\(size) bytes)")
        #endif
    }

    /// One text -> int32 ids of length context_length.
    public func encode(_ text: String) -> [Int32] {
        let room = contextLength - 2  // Python keeps [sot] + the first context_length - 2 tokens + [eot]
        var tokens: [Int32] = []
        tokens.reserveCapacity(room)
        for s in ClipBpeTokenizer.split(TextClean.clean(text)) where tokens.count < room {
            if s.unicodeScalars.elementsEqual(ClipBpeTokenizer.sot.unicodeScalars)
                || s.unicodeScalars.elementsEqual(ClipBpeTokenizer.eot.unicodeScalars) {
                tokens.append(s.unicodeScalars.elementsEqual(ClipBpeTokenizer.sot.unicodeScalars) ? sotId : eotId)
                continue
            }
            for id in bpe(s) where tokens.count < room {
                tokens.append(id)
            }
        }
        return Tokenizers.frame(tokens, contextLength: contextLength, sot: sotId, eot: eotId, pad: padId)
    }

    /// One piece of the split -> its BPE token ids.
    func bpe(_ piece: String) -> [Int32] {
        let utf8 = Array(piece.utf8)
        var word = utf8.enumerated().map { i, byte in
            i == utf8.count - 1 ? byteEndId[Int(byte)] : byteId[Int(byte)]
        }
        while word.count > 1 {
            var best = Int32.max
            var pair: UInt64 = 0
            for i in 0..<(word.count - 1) {
                let k = ClipBpeTokenizer.key(word[i], word[i + 1])
                if let r = ranks[k], r < best {
                    best = r
                    pair = k
                }
            }
            if best == Int32.max {
                break
            }
            let first = Int32(bitPattern: UInt32(pair >> 32)), second = Int32(bitPattern: UInt32(pair & 0xFFFF_FFFF))
            var out: [Int32] = []
            out.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count && word[i] == first && word[i + 1] == second {
                    out.append(merged[Int(best)])
                    i += 2
                } else {
                    out.append(word[i])
                    i += 1
                }
            }
            word = out
        }
        return word
    }

    /// The regex split of the cleaned text, as Python's `regex` module finds it: at each position
    /// the first alternative that matches, in the pattern's order; whitespace between matches is
    /// skipped. Case-insensitive matching only matters for U+017F (long s), which matches "s"
    /// (lower-casing leaves no other upper-case letter the pattern names).
    public static func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        var i = 0
        while i < s.count {
            var end = special(s, i) ?? contraction(s, i)
            if end == nil {
                if isLetter(s[i]) {
                    var e = i
                    while e < s.count && isLetter(s[e]) {
                        e += 1
                    }
                    end = e
                } else if isNumber(s[i]) {
                    end = i + 1
                } else if !TextClean.isSpace(s[i].value) {
                    var e = i
                    while e < s.count && !TextClean.isSpace(s[e].value) && !isLetter(s[e]) && !isNumber(s[e]) {
                        e += 1
                    }
                    end = e
                }
            }
            guard let stop = end else {  // whitespace
                i += 1
                continue
            }
            var piece = String.UnicodeScalarView()
            piece.append(contentsOf: s[i..<stop])
            out.append(String(piece))
            i = stop
        }
        return out
    }

    /// \p{L}: Lu, Ll, Lt, Lm, Lo.
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return false
        }
    }

    /// \p{N}: Nd, Nl, No.
    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    private static let contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]

    private static func special(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        for p in [sot, eot] {
            if let end = matchFolded(s, i, p) {
                return end
            }
        }
        return nil
    }

    private static func contraction(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        guard s[i] == "'" else {
            return nil
        }
        for p in contractions {
            if let end = matchFolded(s, i, p) {
                return end
            }
        }
        return nil
    }

    /// End of `pattern` (lower-case ASCII) matched at `i` case-insensitively, or nil.
    private static func matchFolded(_ s: [Unicode.Scalar], _ i: Int, _ pattern: String) -> Int? {
        var k = i
        for want in pattern.unicodeScalars {
            guard k < s.count else {
                return nil
            }
            let got = s[k].value, w = want.value
            let isLowerAscii = w >= 0x61 && w <= 0x7A
            guard got == w || (isLowerAscii && got == w - 32) || (w == 0x73 && got == 0x17F) else {
                return nil
            }
            k += 1
        }
        return k
    }
}
