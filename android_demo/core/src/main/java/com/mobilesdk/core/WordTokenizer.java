package com.mobilesdk.core;

import java.nio.charset.CharacterCodingException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The word-level tokenizer of {@code mobile_sdk/tokenizer.py}, rule for rule:
 * <ol>
 *   <li>ASCII letters are lower-cased (A-Z -> a-z); nothing else changes.</li>
 *   <li>Separators are ASCII whitespace ({@code " \t\n\r\u000b\f"}) and ASCII punctuation
 *       ({@code !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~}); a word is a maximal run of other characters.</li>
 *   <li>A word in the vocabulary maps to its line number, any other word to {@code <unk>}.</li>
 *   <li>ids = [{@code <sot>}] + word ids + [{@code <eot>}], right-padded with {@code <pad>} to
 *       context_length; longer text keeps its first context_length - 2 words and still ends with
 *       {@code <eot>}.</li>
 * </ol>
 * Non-ASCII characters are never separators, so iterating UTF-16 chars gives the same words as
 * Python's code points (a surrogate pair always stays inside one word).
 */
public final class WordTokenizer implements Tokenizer {
    public static final String KIND = "word";
    public static final String PAD = "<pad>", SOT = "<sot>", EOT = "<eot>", UNK = "<unk>";
    public static final List<String> SPECIALS = Collections.unmodifiableList(Arrays.asList(PAD, SOT, EOT, UNK));
    public static final String WHITESPACE = " \t\n\r\u000b\f";
    public static final String PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    private static final boolean[] SEPARATOR = new boolean[128];

    static {
        for (char c : (WHITESPACE + PUNCTUATION).toCharArray()) {
            SEPARATOR[c] = true;
        }
    }

    private final List<String> vocab;
    private final Map<String, Integer> index;
    private final int contextLength;
    public final int padId, sotId, eotId, unkId;

    public WordTokenizer(List<String> vocab, int contextLength) {
        if (vocab.size() < SPECIALS.size() || !vocab.subList(0, SPECIALS.size()).equals(SPECIALS)) {
            throw new SdkException(SdkException.Kind.TEXT, "vocabulary must start with " + SPECIALS + ", got "
                    + vocab.subList(0, Math.min(4, vocab.size())));
        }
        if (contextLength < 2) {
            throw new SdkException(SdkException.Kind.TEXT,
                    "context_length must be >= 2 (room for <sot> and <eot>), got " + contextLength);
        }
        Map<String, Integer> idx = new HashMap<>(vocab.size() * 2);
        for (int i = 0; i < vocab.size(); i++) {
            if (idx.put(vocab.get(i), i) != null) {
                throw new SdkException(SdkException.Kind.TEXT, "vocabulary has duplicate entries ('" + vocab.get(i) + "')");
            }
        }
        this.vocab = Collections.unmodifiableList(new ArrayList<>(vocab));
        this.index = idx;
        this.contextLength = contextLength;
        this.padId = idx.get(PAD);
        this.sotId = idx.get(SOT);
        this.eotId = idx.get(EOT);
        this.unkId = idx.get(UNK);
    }

    /**
     * A tokenizer for the model of {@code manifest}, from the vocabulary file's bytes: checks the
     * sha256, size and special ids the manifest records, so a wrong vocab.txt is a clear error.
     */
    public static WordTokenizer fromManifest(Manifest manifest, byte[] vocabBytes) {
        Manifest.TokenizerSpec t = manifest.tokenizer;
        if (t.vocabSha256 != null && !t.vocabSha256.equals(Manifest.sha256(vocabBytes))) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "vocabulary " + t.vocabFile
                    + " does not match the manifest's vocab_sha256; bundle the vocab.txt of the same export");
        }
        WordTokenizer tok = new WordTokenizer(splitLines(decodeUtf8(vocabBytes, t.vocabFile)), t.contextLength);
        if (t.vocabSize >= 0 && t.vocabSize != tok.vocabSize()) {
            throw new SdkException(SdkException.Kind.TEXT, "vocabulary " + t.vocabFile + " has " + tok.vocabSize()
                    + " entries, the manifest says " + t.vocabSize);
        }
        if (t.padId != tok.padId || t.sotId != tok.sotId || t.eotId != tok.eotId || t.unkId != tok.unkId) {
            throw new SdkException(SdkException.Kind.TEXT, "special token ids of " + t.vocabFile
                    + " differ from the manifest's");
        }
        return tok;
    }

    private static String decodeUtf8(byte[] b, String name) {
        try {
            return Io.decodeUtf8(b);
        } catch (CharacterCodingException e) {
            throw new SdkException(SdkException.Kind.TEXT, "vocabulary " + name + " is not valid UTF-8", e);
        }
    }

    /** Python's {@code str.splitlines()}: the line boundaries it knows, no empty last line. */
    public static List<String> splitLines(String s) {
        List<String> out = new ArrayList<>();
        int start = 0, i = 0, n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            boolean eol = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e
                    || c == 0x85 || c == 0x2028 || c == 0x2029;
            if (!eol) {
                i++;
                continue;
            }
            out.add(s.substring(start, i));
            i += (c == '\r' && i + 1 < n && s.charAt(i + 1) == '\n') ? 2 : 1;
            start = i;
        }
        if (start < n) {
            out.add(s.substring(start));
        }
        return out;
    }

    /** Rules 1-2: lower-case ASCII letters, split on ASCII whitespace and punctuation. */
    public static List<String> splitWords(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (ch >= 'A' && ch <= 'Z') {
                ch = (char) (ch + ('a' - 'A'));
            }
            if (ch < 128 && SEPARATOR[ch]) {
                if (cur.length() > 0) {
                    words.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(ch);
            }
        }
        if (cur.length() > 0) {
            words.add(cur.toString());
        }
        return words;
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public int contextLength() {
        return contextLength;
    }

    /** One text -> int32 ids of length context_length. */
    @Override
    public int[] encode(String text) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.TEXT, "text must not be null");
        }
        List<String> words = splitWords(text);
        int n = Math.min(words.size(), contextLength - 2);
        int[] wordIds = new int[n];
        for (int i = 0; i < n; i++) {
            Integer id = index.get(words.get(i));
            wordIds[i] = id == null ? unkId : id;
        }
        return Tokenizer.frame(wordIds, n, contextLength, sotId, eotId, padId);
    }

    /** ids -> the words they stand for (specials dropped, stops at {@code <eot>}). */
    public String decode(int[] ids) {
        StringBuilder b = new StringBuilder();
        for (int i : ids) {
            if (i == eotId) {
                break;
            }
            if (i != sotId && i != padId) {
                if (b.length() > 0) {
                    b.append(' ');
                }
                b.append(i >= 0 && i < vocab.size() ? vocab.get(i) : UNK);
            }
        }
        return b.toString();
    }

    public int vocabSize() {
        return vocab.size();
    }

    public List<String> vocab() {
        return vocab;
    }
}
