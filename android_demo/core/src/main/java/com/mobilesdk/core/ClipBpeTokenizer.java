package com.mobilesdk.core;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * open_clip's CLIP BPE tokenizer ({@code open_clip.tokenizer.SimpleTokenizer}, clean "lower"),
 * reproducing its ids:
 * <ol>
 *   <li>Text: {@link TextClean#clean} (HTML unescape twice, whitespace collapsed, lower-cased).
 *       ftfy's {@code fix_text} is skipped: it has no Java port. It changes only damaged text
 *       (mojibake, curly quotes, full-width or decomposed letters, control characters), so such text
 *       can give other ids than Python's.</li>
 *   <li>Split (the regex {@code <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+},
 *       case-insensitive): see {@link #split}.</li>
 *   <li>Each piece: its UTF-8 bytes as the byte-to-unicode symbols, the last one with {@code </w>},
 *       merged pair by pair in the order of the merges file; a literal {@code <start_of_text>} /
 *       {@code <end_of_text>} is that special token.</li>
 *   <li>ids = [sot] + piece ids + [eot], cut to context_length with eot kept last, zero-padded.</li>
 * </ol>
 * The vocabulary is the 256 byte symbols, the same with {@code </w>}, one entry per merge (lines 1
 * to 48894 of {@code bpe_simple_vocab_16e6.txt.gz}), then {@code <start_of_text>}, {@code <end_of_text>}.
 */
public final class ClipBpeTokenizer implements Tokenizer {
    public static final String KIND = "clip_bpe";
    public static final String SOT = "<start_of_text>", EOT = "<end_of_text>";
    /** Merges SimpleTokenizer reads: lines 1 .. 49152 - 256 - 2 of the file (line 0 is a header). */
    public static final int N_MERGES = 49152 - 256 - 2;
    private static final String END_OF_WORD = "</w>";

    /** byte -> its position among the 256 byte symbols (bytes_to_unicode order). */
    private static final int[] BYTE_INDEX = new int[256];
    /** position -> the symbol's code point. */
    private static final int[] BYTE_SYMBOL = new int[256];

    static {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            bs.add(b);
        }
        for (int b = 0xa1; b <= 0xac; b++) {
            bs.add(b);
        }
        for (int b = 0xae; b <= 0xff; b++) {
            bs.add(b);
        }
        int[] cs = new int[256];
        for (int i = 0; i < bs.size(); i++) {
            cs[i] = bs.get(i);
        }
        int n = 0, k = bs.size();
        for (int b = 0; b < 256; b++) {
            if (!bs.contains(b)) {
                bs.add(b);
                cs[k++] = 256 + n++;
            }
        }
        for (int i = 0; i < 256; i++) {
            BYTE_INDEX[bs.get(i)] = i;
            BYTE_SYMBOL[i] = cs[i];
        }
    }

    private final int contextLength;
    public final int sotId, eotId, padId;
    private final int vocabSize;
    /** byte -> id of its symbol, and of its symbol + {@code </w>} (the last byte of a piece). */
    private final int[] byteId = new int[256], byteEndId = new int[256];
    /** (left id << 32 | right id) -> merge rank. */
    private final Map<Long, Integer> ranks;
    /** merge rank -> the id of the merged symbol. */
    private final int[] merged;

    /**
     * From the merges file's text (decompressed): its first {@value #N_MERGES} merges after the
     * header line, as SimpleTokenizer slices them.
     */
    public ClipBpeTokenizer(String mergesText, int contextLength) {
        if (contextLength < 2) {
            throw new SdkException(SdkException.Kind.TEXT,
                    "context_length must be >= 2 (room for <start_of_text> and <end_of_text>), got " + contextLength);
        }
        String[][] pairs = readMerges(mergesText);
        // Python's vocabulary dict: symbol string -> its last index in the list
        Map<String, Integer> encoder = new HashMap<>(2 * (512 + N_MERGES + 2));
        for (int i = 0; i < 256; i++) {
            String sym = new String(Character.toChars(BYTE_SYMBOL[i]));
            encoder.put(sym, i);
        }
        for (int i = 0; i < 256; i++) {
            encoder.put(new String(Character.toChars(BYTE_SYMBOL[i])) + END_OF_WORD, 256 + i);
        }
        for (int r = 0; r < N_MERGES; r++) {
            encoder.put(pairs[r][0] + pairs[r][1], 512 + r);
        }
        int next = 512 + N_MERGES;
        encoder.put(SOT, next);
        encoder.put(EOT, next + 1);
        this.sotId = encoder.get(SOT);
        this.eotId = encoder.get(EOT);
        this.padId = 0;
        this.vocabSize = next + 2;
        this.contextLength = contextLength;
        for (int b = 0; b < 256; b++) {
            String sym = new String(Character.toChars(BYTE_SYMBOL[BYTE_INDEX[b]]));
            byteId[b] = encoder.get(sym);
            byteEndId[b] = encoder.get(sym + END_OF_WORD);
        }
        this.ranks = new HashMap<>(2 * N_MERGES);
        this.merged = new int[N_MERGES];
        for (int r = 0; r < N_MERGES; r++) {
            Integer a = encoder.get(pairs[r][0]), b = encoder.get(pairs[r][1]);
            merged[r] = encoder.get(pairs[r][0] + pairs[r][1]);
            if (a != null && b != null) { // else no word can hold the pair: the merge never applies
                ranks.put(key(a, b), r); // a repeated pair keeps its last rank, as Python's dict does
            }
        }
    }

    /** Lines 1 .. N_MERGES of the text ('\n'-separated), each split on whitespace into two symbols. */
    private static String[][] readMerges(String text) {
        String[][] pairs = new String[N_MERGES][];
        int pos = text.indexOf('\n'); // line 0: the version header
        for (int r = 0; r < N_MERGES; r++) {
            if (pos < 0) {
                throw new SdkException(SdkException.Kind.TEXT, "the BPE merges file has " + r + " merges, CLIP's "
                        + "has at least " + N_MERGES + "; bundle the bpe_simple_vocab_16e6.txt.gz of the export");
            }
            int end = text.indexOf('\n', pos + 1);
            String line = text.substring(pos + 1, end < 0 ? text.length() : end);
            List<String> parts = new ArrayList<>(2);
            for (String w : TextClean.collapseWhitespace(line).split(" ")) {
                if (!w.isEmpty()) {
                    parts.add(w);
                }
            }
            if (parts.size() != 2) {
                throw new SdkException(SdkException.Kind.TEXT, "line " + (r + 1) + " of the BPE merges file is not "
                        + "two symbols ('" + line + "'); bundle the bpe_simple_vocab_16e6.txt.gz of the export");
            }
            pairs[r] = parts.toArray(new String[0]);
            pos = end;
        }
        return pairs;
    }

    private static long key(int a, int b) {
        return ((long) a << 32) | (b & 0xffffffffL);
    }

    /**
     * The tokenizer of {@code manifest} (kind clip_bpe) from the merges file's bytes (gzip, as the
     * export writes it): checks its sha256 when the manifest has one, and the vocabulary size and
     * special ids the manifest records.
     */
    public static ClipBpeTokenizer fromManifest(Manifest manifest, byte[] gzBytes) {
        Manifest.TokenizerSpec t = manifest.tokenizer;
        if (t.mergesSha256 != null && !t.mergesSha256.equals(Manifest.sha256(gzBytes))) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "BPE merges file " + t.mergesFile
                    + " does not match the manifest's merges_sha256; bundle the one of the same export");
        }
        ClipBpeTokenizer tok = new ClipBpeTokenizer(gunzipUtf8(gzBytes, t.mergesFile), t.contextLength);
        if (t.vocabSize >= 0 && t.vocabSize != tok.vocabSize) {
            throw new SdkException(SdkException.Kind.TEXT, "the BPE merges file " + t.mergesFile + " makes "
                    + tok.vocabSize + " tokens, the manifest says vocab_size " + t.vocabSize);
        }
        if (t.sotId != tok.sotId || t.eotId != tok.eotId || t.padId != tok.padId) {
            throw new SdkException(SdkException.Kind.TEXT, "special token ids of " + t.mergesFile + " (sot " + tok.sotId
                    + ", eot " + tok.eotId + ", pad 0) differ from the manifest's (sot " + t.sotId + ", eot " + t.eotId
                    + ", pad " + t.padId + ")");
        }
        return tok;
    }

    static String gunzipUtf8(byte[] gz, String name) {
        byte[] raw;
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(gz))) {
            raw = Io.readAll(in);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "BPE merges file " + name + " is not a readable gzip file: "
                    + e.getMessage(), e);
        }
        try {
            return Io.decodeUtf8(raw);
        } catch (CharacterCodingException e) {
            throw new SdkException(SdkException.Kind.TEXT, "BPE merges file " + name + " is not valid UTF-8", e);
        }
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public int contextLength() {
        return contextLength;
    }

    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int[] encode(String text) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.TEXT, "text must not be null");
        }
        int room = contextLength - 2; // Python keeps [sot] + the first context_length - 2 tokens + [eot]
        int[] tokens = new int[room];
        int n = 0;
        for (String piece : split(TextClean.clean(text))) {
            if (n >= room) {
                break;
            }
            if (piece.equals(SOT) || piece.equals(EOT)) {
                tokens[n++] = piece.equals(SOT) ? sotId : eotId;
                continue;
            }
            for (int id : bpe(piece)) {
                if (n >= room) {
                    break;
                }
                tokens[n++] = id;
            }
        }
        return Tokenizer.frame(tokens, n, contextLength, sotId, eotId, padId);
    }

    /** One piece of the split -> its BPE token ids. */
    int[] bpe(String piece) {
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        int len = utf8.length;
        int[] word = new int[len];
        for (int i = 0; i < len; i++) {
            word[i] = i == len - 1 ? byteEndId[utf8[i] & 0xff] : byteId[utf8[i] & 0xff];
        }
        while (len > 1) {
            int best = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < len; i++) {
                Integer r = ranks.get(key(word[i], word[i + 1]));
                if (r != null && r < best) {
                    best = r;
                }
            }
            if (best == Integer.MAX_VALUE) {
                break;
            }
            long pair = -1;
            for (int i = 0; i + 1 < len; i++) {
                Integer r = ranks.get(key(word[i], word[i + 1]));
                if (r != null && r == best) {
                    pair = key(word[i], word[i + 1]);
                    break;
                }
            }
            int first = (int) (pair >>> 32), second = (int) pair;
            int out = 0;
            for (int i = 0; i < len; ) {
                if (i + 1 < len && word[i] == first && word[i + 1] == second) {
                    word[out++] = merged[best];
                    i += 2;
                } else {
                    word[out++] = word[i++];
                }
            }
            len = out;
        }
        return Arrays.copyOf(word, len);
    }

    /**
     * The regex split of the cleaned text, as the Python {@code regex} module finds it: at each
     * position the first alternative that matches, in the pattern's order; whitespace between
     * matches is skipped. Case-insensitive matching only matters for U+017F (long s), which
     * matches "s" (lower-casing leaves no other upper-case letter the pattern names).
     */
    public static List<String> split(String text) {
        List<String> out = new ArrayList<>();
        int n = text.length();
        int i = 0;
        while (i < n) {
            int c = text.codePointAt(i);
            int end = special(text, i);
            if (end < 0) {
                end = contraction(text, i);
            }
            if (end < 0) {
                if (Character.isLetter(c)) {
                    end = i;
                    while (end < n && Character.isLetter(text.codePointAt(end))) {
                        end += Character.charCount(text.codePointAt(end));
                    }
                } else if (isNumber(c)) {
                    end = i + Character.charCount(c);
                } else if (!TextClean.isSpace(c)) {
                    end = i;
                    while (end < n) {
                        int d = text.codePointAt(end);
                        if (TextClean.isSpace(d) || Character.isLetter(d) || isNumber(d)) {
                            break;
                        }
                        end += Character.charCount(d);
                    }
                }
            }
            if (end < 0) { // whitespace
                i += Character.charCount(c);
                continue;
            }
            out.add(text.substring(i, end));
            i = end;
        }
        return out;
    }

    /** \p{N}: Nd, Nl, No. */
    static boolean isNumber(int c) {
        int t = Character.getType(c);
        return t == Character.DECIMAL_DIGIT_NUMBER || t == Character.LETTER_NUMBER || t == Character.OTHER_NUMBER;
    }

    private static final String[] CONTRACTIONS = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};

    private static int special(String text, int i) {
        for (String s : new String[] {SOT, EOT}) {
            int end = matchFolded(text, i, s);
            if (end >= 0) {
                return end;
            }
        }
        return -1;
    }

    private static int contraction(String text, int i) {
        if (text.charAt(i) != '\'') {
            return -1;
        }
        for (String s : CONTRACTIONS) {
            int end = matchFolded(text, i, s);
            if (end >= 0) {
                return end;
            }
        }
        return -1;
    }

    /** End of {@code pattern} (lower-case ASCII) matched at {@code i} case-insensitively, or -1. */
    private static int matchFolded(String text, int i, String pattern) {
        int k = i;
        for (int p = 0; p < pattern.length(); p++) {
            if (k >= text.length()) {
                return -1;
            }
            char want = pattern.charAt(p), got = text.charAt(k);
            boolean same = got == want || (want >= 'a' && want <= 'z' && got == want - 32) || (want == 's' && got == '\u017f');
            if (!same) {
                return -1;
            }
            k++;
        }
        return k;
    }
}
