package com.mobilesdk.core;

import static com.mobilesdk.core.TestData.expectError;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.util.Arrays;
import java.util.List;
import org.junit.Test;

/**
 * The CLIP BPE tokenizer's rules, each against values printed by Python (html.unescape,
 * str.lower, str.split, open_clip's SimpleTokenizer and its regex); the merges-file cases run
 * where the golden folder is a CLIP BPE model's (tests/golden_bpe).
 */
public class ClipBpeTokenizerTest {
    private static Manifest bpeManifest() {
        Manifest m = TestData.manifest();
        assumeTrue("the golden folder's tokenizer is " + m.tokenizer.kind, m.tokenizer.kind.equals(ClipBpeTokenizer.KIND));
        return m;
    }

    private static String merges(Manifest m) {
        return ClipBpeTokenizer.gunzipUtf8(TestData.bytes(new File(TestData.goldenDir(), m.tokenizer.mergesFile)),
                m.tokenizer.mergesFile);
    }

    @Test
    public void htmlUnescapeIsPythons() {
        assertEquals("&", TextClean.htmlUnescape("&amp;"));
        assertEquals("&", TextClean.htmlUnescape("&amp"));
        assertEquals("&x", TextClean.htmlUnescape("&ampx"));
        assertEquals("&", TextClean.htmlUnescape("&AMP;"));
        assertEquals("\u2209", TextClean.htmlUnescape("&notin;"));
        assertEquals("\u00acit;", TextClean.htmlUnescape("&notit;"));
        assertEquals("A", TextClean.htmlUnescape("&#65;"));
        assertEquals("A", TextClean.htmlUnescape("&#x41;"));
        assertEquals("A", TextClean.htmlUnescape("&#X41"));
        assertEquals("\ufffd", TextClean.htmlUnescape("&#0;"));
        assertEquals("\u20ac", TextClean.htmlUnescape("&#128;"));
        assertEquals("\ufffd", TextClean.htmlUnescape("&#x110000;"));
        assertEquals("\ufffd", TextClean.htmlUnescape("&#xD800;"));
        assertEquals("", TextClean.htmlUnescape("&#11;"));
        assertEquals("\ufffd", TextClean.htmlUnescape("&#99999999999999999999;"));
        assertEquals("&#;", TextClean.htmlUnescape("&#;"));
        assertEquals("&#x;", TextClean.htmlUnescape("&#x;"));
        assertEquals("&", TextClean.htmlUnescape("&"));
        assertEquals("a&b", TextClean.htmlUnescape("a&b"));
        assertEquals("& amp;", TextClean.htmlUnescape("& amp;"));
        assertEquals("&bogus;", TextClean.htmlUnescape("&bogus;"));
        assertEquals("<>", TextClean.htmlUnescape("&lt&gt"));
        assertEquals("AAa", TextClean.htmlUnescape("&#0065;&#65a"));
        assertEquals("\u223e\u0333", TextClean.htmlUnescape("&acE;"));
        assertEquals("&aa;", TextClean.htmlUnescape("&aa;"));
        assertEquals("&caf\u00e9;", TextClean.htmlUnescape("&caf\u00e9;"));
        assertEquals("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", TextClean.htmlUnescape("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"));
        assertEquals("&amp;", TextClean.htmlUnescape("&amp;amp;"));
        assertEquals("x\ud83d\ude42y", TextClean.htmlUnescape("x&#x1F642;y"));
    }

    @Test
    public void lowerIsPythons() {
        assertEquals("\u03bf\u03b4\u03bf\u03c2. \u03c3\u03b1 i\u0307", TextClean.lower("\u039f\u0394\u039f\u03a3. \u03a3\u0391 \u0130"));
        assertEquals("\u03c3", TextClean.lower("\u03a3"));
        assertEquals("\u03b1\u03c2", TextClean.lower("\u0391\u03a3"));
        assertEquals("\u03b1\u03c2'", TextClean.lower("\u0391\u03a3'"));
        assertEquals("\u03b1\u03c3'\u03b2", TextClean.lower("\u0391\u03a3'\u0392"));
        assertEquals("\u03b1'\u03c2", TextClean.lower("\u0391'\u03a3"));
        assertEquals("\u03c3\u0308\u03b1", TextClean.lower("\u03a3\u0308\u0391"));
        assertEquals("\u03b1\u03c2\u0308", TextClean.lower("\u0391\u03a3\u0308"));
        assertEquals("ab \u03c3\u03b1\u03c2 \u03b1\u03c21", TextClean.lower("Ab \u03a3\u0391\u03a3 \u0391\u03a31"));
        assertEquals("\u01c6 \u217b \u00df \u00df \uff41\uff42", TextClean.lower("\u01c5 \u216b \u00df \u1e9e \uff21\uff22"));
    }

    @Test
    public void whitespaceIsPythons() {
        assertEquals("a b c d\u200be f g", TextClean.collapseWhitespace("  a \t b\u00a0c\u3000d\u200be\u001cf\u0085g  "));
        assertEquals("", TextClean.collapseWhitespace(""));
        assertEquals("", TextClean.collapseWhitespace("   "));
        assertEquals("x", TextClean.collapseWhitespace("x"));
        for (int c = 0; c <= 0x10ffff; c++) { // str.isspace(): exactly these code points
            boolean want = (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680
                    || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
            assertEquals(Integer.toHexString(c), want, TextClean.isSpace(c));
        }
    }

    @Test
    public void splitIsTheRegexOfOpenClip() {
        assertEquals(List.of("it", "'s", "!'", "s", "<start_of_text>", "x", "1", "2", "ab", "\u00bd", "'\u017f"), ClipBpeTokenizer.split("it's!'s <start_of_text>x 12ab \u00bd '\u017f"));
        assertEquals(List.of("don", "'t", "...", "you", "'ll", "'re"), ClipBpeTokenizer.split("don't...you'll 're"));
        assertEquals(List.of("<end_of_text>", "<start_of_text>"), ClipBpeTokenizer.split("<end_of_text><start_of_text>"));
        assertEquals(List.of("a", "_", "b", "-", "c", "3", ".", "5", "%", "\ud83d\ude42\ud83d\ude42", "\u65e5\u672c\u8a9e"), ClipBpeTokenizer.split("a_b-c 3.5% \ud83d\ude42\ud83d\ude42 \u65e5\u672c\u8a9e"));
        assertEquals(List.of("'''", "s"), ClipBpeTokenizer.split("'''s"));
        assertEquals(List.of("<", "start", "_", "of", "_", "textx", ">"), ClipBpeTokenizer.split("<start_of_textx>"));
        assertEquals(List.of("i", "'m", "'d", "'ve"), ClipBpeTokenizer.split("i'm'd've"));
    }

    @Test
    public void encodesLikeSimpleTokenizerAtAnyContextLength() {
        Manifest m = bpeManifest();
        ClipBpeTokenizer tok = new ClipBpeTokenizer(merges(m), 8);
        Object[][] cases = { // SimpleTokenizer(context_length=8)
            {"antidisestablishmentarianism", 49406, 3120, 4262, 7726, 12658, 1585, 44351, 49407},
            {"a b c d e f", 49406, 320, 321, 322, 323, 324, 325, 49407},
            {"a b c d e f g", 49406, 320, 321, 322, 323, 324, 325, 49407},
            {"", 49406, 49407, 0, 0, 0, 0, 0, 0},
            {"<end_of_text>", 49406, 49407, 49407, 0, 0, 0, 0, 0},
            {"hello world", 49406, 3306, 1002, 49407, 0, 0, 0, 0},
        };
        for (Object[] c : cases) {
            int[] want = new int[c.length - 1];
            for (int i = 0; i < want.length; i++) {
                want[i] = (Integer) c[i + 1];
            }
            assertArrayEquals("ids of '" + c[0] + "'", want, tok.encode((String) c[0]));
        }
        assertEquals(49408, tok.vocabSize());
        assertEquals(List.of(49406, 49407, 0), List.of(tok.sotId, tok.eotId, tok.padId));
    }

    @Test
    public void goldenFolderIsABpeModel() {
        Manifest m = bpeManifest();
        Tokenizer tok = TestData.tokenizer();
        assertTrue(tok instanceof ClipBpeTokenizer);
        assertEquals(List.of("bpe_simple_vocab_16e6.txt.gz"), m.tokenizer.files());
        assertTrue("BPE golden texts present", TestData.list(TestData.golden(), "texts").size() > 10);
    }

    @Test
    public void wrongMergesFilesAreClearErrors() {
        Manifest m = bpeManifest();
        byte[] gz = TestData.bytes(new File(TestData.goldenDir(), m.tokenizer.mergesFile));
        byte[] other = Arrays.copyOf(gz, gz.length);
        other[other.length / 2] ^= 1;
        expectError(SdkException.Kind.MODEL_FILE, "merges_sha256", () -> Tokenizer.fromManifest(m, name -> other));
        Manifest noSha = Manifest.parse(TestData.manifestText()
                .replace("\"merges_sha256\"", "\"merges_sha256_unused\""), "m.json");
        assertEquals(null, noSha.tokenizer.mergesSha256);
        expectError(SdkException.Kind.MODEL_FILE, "not a readable gzip", () -> Tokenizer.fromManifest(noSha, name -> new byte[] {1, 2, 3}));
        String text = merges(m);
        String cut = text.substring(0, text.indexOf('\n', text.length() / 8));
        expectError(SdkException.Kind.TEXT, "merges", () -> new ClipBpeTokenizer(cut, 24));
        expectError(SdkException.Kind.TEXT, "context_length", () -> new ClipBpeTokenizer(text, 1));
        Manifest wrongSize = Manifest.parse(TestData.manifestText()
                .replaceFirst("\"vocab_size\":\\s*49408", "\"vocab_size\": 49409"), "m.json");
        expectError(SdkException.Kind.TEXT, "vocab_size 49409", () -> Tokenizer.fromManifest(wrongSize, name -> gz));
    }

    @Test
    public void unsupportedTokenizerKindsAreClearErrors() {
        String t = TestData.manifestText()
                .replaceFirst("\"kind\":\\s*\"[a-z_]+\",", "")
                .replaceFirst("\"tokenizer\":\\s*\\{", "\"tokenizer\": {\"kind\": \"hf\", \"tokenizer_file\": \"tokenizer.json\",");
        Manifest hf = Manifest.parse(t, "m.json");
        assertEquals("hf", hf.tokenizer.kind);
        SdkException e = expectError(SdkException.Kind.TEXT, "tokenizer kind 'hf' is not supported",
                () -> Tokenizer.fromManifest(hf, name -> new byte[0]));
        assertTrue(e.getMessage(), e.getMessage().contains("word, clip_bpe"));
        String other = t.replace("\"kind\": \"hf\"", "\"kind\": \"sentencepiece\"");
        expectError(SdkException.Kind.MANIFEST, "kind 'sentencepiece' is not one of", () -> Manifest.parse(other, "m.json"));
    }
}
