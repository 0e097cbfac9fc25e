package com.mobilesdk.core;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The text cleaning of open_clip's CLIP tokenizer ({@code _clean_lower}) as Python computes it,
 * without ftfy (which has no Java port; see {@link ClipBpeTokenizer}): {@code html.unescape} twice,
 * strip, whitespace runs to one space ({@code " ".join(text.split())}), then {@code str.lower()}.
 * Every step works on code points, as Python's {@code str} does.
 */
public final class TextClean {
    private TextClean() {
    }

    /** {@code html.unescape(html.unescape(text))}, stripped, whitespace collapsed, lower-cased. */
    public static String clean(String text) {
        return lower(collapseWhitespace(htmlUnescape(htmlUnescape(text))));
    }

    // ------------------------------------------------------------------ whitespace

    /** Python's {@code str.isspace()} for one code point (what {@code str.split()} splits on). */
    public static boolean isSpace(int c) {
        return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f
                || c == 0x3000;
    }

    /** {@code " ".join(text.split())}: no leading / trailing whitespace, one space between words. */
    public static String collapseWhitespace(String text) {
        StringBuilder b = new StringBuilder(text.length());
        boolean gap = false;
        for (int i = 0; i < text.length(); ) {
            int c = text.codePointAt(i);
            i += Character.charCount(c);
            if (isSpace(c)) {
                gap = b.length() > 0;
                continue;
            }
            if (gap) {
                b.append(' ');
                gap = false;
            }
            b.appendCodePoint(c);
        }
        return b.toString();
    }

    // ------------------------------------------------------------------ lower case

    /**
     * Python's {@code str.lower()}: the full lower-case mapping of each code point (U+0130 becomes
     * two), with capital sigma in the final-sigma context (a cased letter before it, skipping
     * case-ignorable ones, and none after it) becoming final sigma. Code points newer than this
     * Java's Unicode version stay as they are.
     */
    public static String lower(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            if (c == 0x130) {
                b.append("i\u0307");
            } else if (c == 0x3a3) {
                b.append(finalSigma(s, i) ? '\u03c2' : '\u03c3');
            } else {
                b.appendCodePoint(Character.toLowerCase(c));
            }
            i += Character.charCount(c);
        }
        return b.toString();
    }

    /** CPython's {@code handle_capital_sigma}: the sigma at char index {@code i} ends a word. */
    private static boolean finalSigma(String s, int i) {
        int j = i, c = 0;
        boolean found = false;
        while (j > 0) {
            c = s.codePointBefore(j);
            j -= Character.charCount(c);
            if (!caseIgnorable(c)) {
                found = true;
                break;
            }
        }
        if (!found || !cased(c)) {
            return false;
        }
        for (j = i + 1; j < s.length(); ) {
            c = s.codePointAt(j);
            j += Character.charCount(c);
            if (!caseIgnorable(c)) {
                return !cased(c);
            }
        }
        return true;
    }

    /** Unicode's Cased: Lu, Ll, Lt, Other_Uppercase, Other_Lowercase (Java's isUpper/LowerCase include the latter). */
    static boolean cased(int c) {
        return Character.isUpperCase(c) || Character.isLowerCase(c) || Character.isTitleCase(c);
    }

    /** Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk, or Word_Break MidLetter / MidNumLet / Single_Quote. */
    static boolean caseIgnorable(int c) {
        switch (Character.getType(c)) {
            case Character.NON_SPACING_MARK:
            case Character.ENCLOSING_MARK:
            case Character.FORMAT:
            case Character.MODIFIER_LETTER:
            case Character.MODIFIER_SYMBOL:
                return true;
            default:
                break;
        }
        switch (c) {
            case 0x27: case 0x2e: case 0x3a: case 0xb7: case 0x387: case 0x55f: case 0x5f4: case 0x2018:
            case 0x2019: case 0x2024: case 0x2027: case 0xfe13: case 0xfe52: case 0xfe55: case 0xff07:
            case 0xff0e: case 0xff1a:
                return true;
            default:
                return false;
        }
    }

    // ------------------------------------------------------------------ html.unescape

    private static final class Tables { // parsed on first use
        static final Map<String, String> NAMED = new HashMap<>(4096);
        static final Map<Integer, String> INVALID_CHARREFS = new HashMap<>();
        static final Set<Integer> INVALID_CODEPOINTS = new HashSet<>();

        static {
            for (String e : HtmlEntities.NAMED.trim().split(" ")) {
                int eq = e.indexOf('=');
                NAMED.put(e.substring(0, eq), codePoints(e.substring(eq + 1)));
            }
            for (String e : HtmlEntities.INVALID_CHARREFS.trim().split(" ")) {
                int eq = e.indexOf('=');
                INVALID_CHARREFS.put(Integer.parseInt(e.substring(0, eq), 16), codePoints(e.substring(eq + 1)));
            }
            for (String e : HtmlEntities.INVALID_CODEPOINTS.trim().split(" ")) {
                INVALID_CODEPOINTS.add(Integer.parseInt(e, 16));
            }
        }

        private static String codePoints(String hex) {
            StringBuilder b = new StringBuilder();
            if (!hex.isEmpty()) {
                for (String h : hex.split("\\+")) {
                    b.appendCodePoint(Integer.parseInt(h, 16));
                }
            }
            return b.toString();
        }
    }

    private static final int MAX_NAME = 32;

    /**
     * Python's {@code html.unescape}: the references matched by
     * {@code &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)}, named ones from the HTML5
     * table (the longest known prefix where the whole name is unknown), numeric ones with HTML5's
     * replacements for invalid numbers.
     */
    public static String htmlUnescape(String s) {
        if (s.indexOf('&') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder(s.length());
        int n = s.length();
        int i = 0;
        while (i < n) {
            char ch = s.charAt(i);
            if (ch != '&') {
                b.append(ch);
                i++;
                continue;
            }
            int end = i + 1 < n && s.charAt(i + 1) == '#' ? numeric(s, i + 2, b) : named(s, i + 1, b);
            if (end < 0) { // no reference here: '&' stays, matching resumes after it
                b.append('&');
                i++;
            } else {
                i = end;
            }
        }
        return b.toString();
    }

    /** A numeric reference whose digits start at {@code p}: appends it, returns its end, or -1. */
    private static int numeric(String s, int p, StringBuilder out) {
        int n = s.length();
        boolean hex = p < n && (s.charAt(p) == 'x' || s.charAt(p) == 'X');
        int start = hex ? p + 1 : p, k = start;
        long num = 0;
        while (k < n) {
            int d = digit(s.charAt(k), hex ? 16 : 10);
            if (d < 0) {
                break;
            }
            num = Math.min(num * (hex ? 16 : 10) + d, 0x7fffffffL); // saturates: still > 0x10FFFF
            k++;
        }
        if (k == start) {
            return -1;
        }
        if (k < n && s.charAt(k) == ';') {
            k++;
        }
        int cp = (int) num;
        String replaced = Tables.INVALID_CHARREFS.get(cp);
        if (replaced != null) {
            out.append(replaced);
        } else if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            out.append('\ufffd');
        } else if (!Tables.INVALID_CODEPOINTS.contains(cp)) {
            out.appendCodePoint(cp);
        }
        return k;
    }

    private static int digit(char c, int radix) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (radix == 16 && c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (radix == 16 && c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    /** A named reference whose name starts at {@code p}: appends it, returns its end, or -1. */
    private static int named(String s, int p, StringBuilder out) {
        int n = s.length(), k = p, count = 0;
        while (k < n && count < MAX_NAME) {
            int c = s.codePointAt(k);
            if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') {
                break;
            }
            k += Character.charCount(c);
            count++;
        }
        if (count == 0) {
            return -1;
        }
        if (k < n && s.charAt(k) == ';') {
            k++;
        }
        String name = s.substring(p, k);
        String v = Tables.NAMED.get(name);
        if (v != null) {
            out.append(v);
            return k;
        }
        for (int x = name.length() - 1; x >= 2; x--) { // the longest known proper prefix (names are ASCII)
            v = Tables.NAMED.get(name.substring(0, x));
            if (v != null) {
                out.append(v).append(name, x, name.length());
                return k;
            }
        }
        out.append('&').append(name);
        return k;
    }
}
