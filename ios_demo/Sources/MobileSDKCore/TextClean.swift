import Foundation

/// The text cleaning of open_clip's CLIP tokenizer (`_clean_lower`) as Python computes it, without
/// ftfy (which has no Swift port; see `ClipBpeTokenizer`): `html.unescape` twice, strip, whitespace
/// runs to one space (`" ".join(text.split())`), then `str.lower()` (android_demo `TextClean`).
/// Everything works on Unicode scalars, as Python's `str` works on code points: Swift's `String`
/// and `Character` would merge "\r\n" and compare canonically equivalent spellings as equal.
public enum TextClean {
    /// `html.unescape(html.unescape(text))`, stripped, whitespace collapsed, lower-cased.
    public static func clean(_ text: String) -> String {
        lower(collapseWhitespace(htmlUnescape(htmlUnescape(text))))
    }

    // MARK: whitespace

    /// Python's `str.isspace()` for one code point (what `str.split()` splits on).
    public static func isSpace(_ c: UInt32) -> Bool {
        (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680
            || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F
            || c == 0x3000
    }

    /// `" ".join(text.split())`: no leading / trailing whitespace, one space between words.
    public static func collapseWhitespace(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var gap = false
        for scalar in text.unicodeScalars {
            if isSpace(scalar.value) {
                gap = !out.isEmpty
                continue
            }
            if gap {
                out.append(" ")
                gap = false
            }
            out.append(scalar)
        }
        return String(out)
    }

    // MARK: lower case

    /// Python's `str.lower()`: each scalar's full lower-case mapping (U+0130 becomes two), with
    /// capital sigma in the final-sigma context (a cased letter before it, skipping case-ignorable
    /// ones, and none after it) becoming final sigma. Scalars newer than this platform's Unicode
    /// version stay as they are.
    public static func lower(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x3A3 {
                let sigma: Unicode.Scalar = finalSigma(scalars, i) ? "\u{03C2}" : "\u{03C3}"
                out.append(sigma)
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    /// CPython's `handle_capital_sigma`: the sigma at `i` ends a word.
    private static func finalSigma(_ s: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable {
            j -= 1
        }
        guard j >= 0, s[j].properties.isCased else {
            return false
        }
        j = i + 1
        while j < s.count && s[j].properties.isCaseIgnorable {
            j += 1
        }
        return j == s.count || !s[j].properties.isCased
    }

    // MARK: html.unescape

    /// The tables of `HtmlEntities`, parsed on first use.
    private struct Tables {
        var named: [String: [Unicode.Scalar]] = [:]
        var invalidCharrefs: [UInt32: [Unicode.Scalar]] = [:]
        var invalidCodepoints: Set<UInt32> = []

        static let shared = Tables()

        private init() {
            for (name, value) in Tables.entries(HtmlEntities.named) {
                named[name] = value
            }
            for (number, value) in Tables.entries(HtmlEntities.invalidCharrefs) {
                invalidCharrefs[UInt32(number, radix: 16) ?? 0] = value
            }
            for item in HtmlEntities.invalidCodepoints.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                invalidCodepoints.insert(UInt32(item, radix: 16) ?? 0)
            }
        }

        /// "NAME=HEX[+HEX] ..." -> (NAME, scalars).
        private static func entries(_ table: String) -> [(String, [Unicode.Scalar])] {
            table.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { (item: Substring) -> (String, [Unicode.Scalar])? in
                guard let eq = item.firstIndex(of: "=") else { return nil }
                let value = item[item.index(after: eq)...].split(separator: "+").compactMap {
                    UInt32($0, radix: 16).flatMap { Unicode.Scalar($0) }
                }
                return (String(item[..<eq]), value)
            }
        }
    }

    private static let maxName = 32
    /// What ends a reference name: `[^\t\n\f <&#;]`.
    private static let nameStop: Set<UInt32> = [0x09, 0x0A, 0x0C, 0x20, 0x3C, 0x26, 0x23, 0x3B]

    /// Python's `html.unescape`: the references matched by
    /// `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`, named ones from the HTML5 table
    /// (the longest known prefix where the whole name is unknown), numeric ones with HTML5's
    /// replacements for invalid numbers.
    public static func htmlUnescape(_ text: String) -> String {
        let s = Array(text.unicodeScalars)
        guard s.contains("&") else {
            return text
        }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] != "&" {
                out.append(s[i])
                i += 1
                continue
            }
            let end = i + 1 < s.count && s[i + 1] == "#" ? numeric(s, i + 2, &out) : named(s, i + 1, &out)
            if let end = end {
                i = end
            } else {  // no reference here: '&' stays, matching resumes after it
                out.append("&")
                i += 1
            }
        }
        return String(out)
    }

    /// A numeric reference whose digits start at `p`: appends it, returns its end, or nil.
    private static func numeric(_ s: [Unicode.Scalar], _ p: Int, _ out: inout String.UnicodeScalarView) -> Int? {
        let hex = p < s.count && (s[p] == "x" || s[p] == "X")
        let start = hex ? p + 1 : p
        var k = start
        var num: UInt64 = 0
        while k < s.count, let d = digit(s[k], hex ? 16 : 10) {
            num = min(num * (hex ? 16 : 10) + UInt64(d), 0x7FFF_FFFF)  // saturates: still > 0x10FFFF
            k += 1
        }
        if k == start {
            return nil
        }
        if k < s.count && s[k] == ";" {
            k += 1
        }
        let cp = UInt32(num)
        let tables = Tables.shared
        if let replaced = tables.invalidCharrefs[cp] {
            out.append(contentsOf: replaced)
        } else if (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF {
            out.append("\u{FFFD}")
        } else if !tables.invalidCodepoints.contains(cp), let scalar = Unicode.Scalar(cp) {
            out.append(scalar)
        }
        return k
    }

    private static func digit(_ c: Unicode.Scalar, _ radix: UInt32) -> UInt32? {
        let v = c.value
        if v >= 0x30 && v <= 0x39 {
            return v - 0x30
        }
        if radix == 16 && v >= 0x61 && v <= 0x66 {
            return v - 0x61 + 10
        }
        if radix == 16 && v >= 0x41 && v <= 0x46 {
            return v - 0x41 + 10
        }
        return nil
    }

    /// A named reference whose name starts at `p`: appends it, returns its end, or nil.
    private static func named(_ s: [Unicode.Scalar], _ p: Int, _ out: inout String.UnicodeScalarView) -> Int? {
        var k = p
        while k < s.count && k - p < maxName && !nameStop.contains(s[k].value) {
            k += 1
        }
        if k == p {
            return nil
        }
        if k < s.count && s[k] == ";" {
            k += 1
        }
        let name = s[p..<k]
        let table = Tables.shared.named
        if let whole = key(name), let value = table[whole] {
            out.append(contentsOf: value)
            return k
        }
        var x = name.count - 1
        while x >= 2 {  // the longest known proper prefix
            if let prefix = key(name.prefix(x)), let value = table[prefix] {
                out.append(contentsOf: value)
                out.append(contentsOf: name.dropFirst(x))
                return k
            }
            x -= 1
        }
        out.append("&")
        out.append(contentsOf: name)
        return k
    }

    /// The table key of a name: nil unless ASCII, like every name in the table (a Swift String
    /// key would also equate a non-ASCII spelling canonically equivalent to a name, such as a
    /// GREEK QUESTION MARK for ';').
    private static func key(_ scalars: ArraySlice<Unicode.Scalar>) -> String? {
        guard scalars.allSatisfy({ $0.isASCII }) else {
            return nil
        }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars)
        return String(v)
    }
}
