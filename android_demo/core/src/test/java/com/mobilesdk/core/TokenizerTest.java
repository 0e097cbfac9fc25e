package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The tokenizer the golden folder's manifest names (through the apps' factory) replays its ids;
 * the word tokenizer's own rules. {@link ClipBpeTokenizerTest} has the CLIP BPE's.
 */
public class TokenizerTest {
    private static WordTokenizer wordTokenizer() {
        Tokenizer t = TestData.tokenizer();
        assumeTrue("the golden folder's tokenizer is " + t.kind(), t instanceof WordTokenizer);
        return (WordTokenizer) t;
    }

    @Test
    public void goldenTextsGiveTheSameIds() {
        Tokenizer tok = TestData.tokenizer();
        List<Object> texts = TestData.list(TestData.golden(), "texts");
        assertTrue("golden texts present", texts.size() >= 5);
        for (Object o : texts) {
            Map<String, Object> t = TestData.obj(o, "text");
            String text = (String) t.get("text");
            assertArrayEquals("ids of '" + text + "'", Json.asIntArray(t.get("ids"), "ids"), tok.encode(text));
        }
    }

    @Test
    public void goldenPromptsGiveTheSameIdsAndMatchTheManifest() {
        Tokenizer tok = TestData.tokenizer();
        Manifest m = TestData.manifest();
        Map<String, Object> p = TestData.obj(TestData.golden().get("prompts"), "prompts");
        String task = (String) p.get("task");
        List<Object> texts = Json.asList(p.get("texts"), "texts");
        int[][] ids = Json.asIntMatrix(p.get("ids"), "ids");
        assertEquals(m.tasks.get(task).prompts, texts);
        for (int i = 0; i < ids.length; i++) {
            assertArrayEquals("prompt " + texts.get(i), ids[i], tok.encode((String) texts.get(i)));
        }
    }

    @Test
    public void factoryPicksTheManifestsKind() {
        Tokenizer tok = TestData.tokenizer();
        Manifest m = TestData.manifest();
        assertEquals(m.tokenizer.kind, tok.kind());
        assertEquals(m.tokenizer.contextLength, tok.contextLength());
        if (tok instanceof WordTokenizer) {
            WordTokenizer w = (WordTokenizer) tok;
            assertEquals(m.tokenizer.vocabSize, w.vocabSize());
            assertEquals(List.of(0, 1, 2, 3), List.of(w.padId, w.sotId, w.eotId, w.unkId));
        } else {
            ClipBpeTokenizer b = (ClipBpeTokenizer) tok;
            assertEquals(m.tokenizer.vocabSize, b.vocabSize());
            assertEquals(List.of(m.tokenizer.padId, m.tokenizer.sotId, m.tokenizer.eotId), List.of(b.padId, b.sotId, b.eotId));
        }
    }

    @Test
    public void splitsLikePython() {
        // expected values printed by mobile_sdk.tokenizer.split_words
        assertEquals(List.of("hello", "world", "it", "s", "a", "test"), WordTokenizer.splitWords("Hello, WORLD!  it's  a test"));
        assertEquals(List.of("café", "École", "日本", "a", "b", "c"), WordTokenizer.splitWords("café ÉCOLE 日本\tA\u000bB\u000cC"));
        assertEquals(List.of("under", "score", "dash", "dot", "slash"), WordTokenizer.splitWords("under_score-dash.dot/slash"));
        assertEquals(List.of("\uD83D\uDE00smile\uD83D\uDE00", "red"), WordTokenizer.splitWords("\uD83D\uDE00smile\uD83D\uDE00 RED"));
        assertEquals(List.of("red\u00a0blue"), WordTokenizer.splitWords("red\u00a0blue")); // NBSP is not ASCII whitespace
        assertEquals(List.of(), WordTokenizer.splitWords(" \t\n\r\u000b\f!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"));
    }

    @Test
    public void encodesUnknownTruncatesAndPads() {
        WordTokenizer tok = wordTokenizer();
        int[] ids = tok.encode("RED red Red");
        int red = tok.vocab().indexOf("red");
        int[] want = new int[tok.contextLength()];
        want[0] = tok.sotId;
        want[1] = want[2] = want[3] = red;
        want[4] = tok.eotId;
        assertArrayEquals(want, ids);
        assertEquals(tok.unkId, tok.encode("red\u00a0blue")[1]);
        int[] empty = tok.encode("");
        assertEquals(tok.sotId, empty[0]);
        assertEquals(tok.eotId, empty[1]);
        StringBuilder longText = new StringBuilder();
        for (int i = 0; i < 3 * tok.contextLength(); i++) {
            longText.append("red ");
        }
        int[] t = tok.encode(longText.toString());
        assertEquals(tok.contextLength(), t.length);
        assertEquals(tok.eotId, t[t.length - 1]);
        assertEquals(red, t[t.length - 2]);
        assertEquals("red red red", tok.decode(ids));
    }

    @Test
    public void splitLinesLikePython() {
        assertEquals(List.of("a", "b", "", "c"), WordTokenizer.splitLines("a\r\nb\r\rc\n"));
        assertEquals(List.of("a", "b"), WordTokenizer.splitLines("a\u2028b"));
        assertEquals(List.of(), WordTokenizer.splitLines(""));
    }

    @Test
    public void rejectsBadVocabularies() {
        wordTokenizer();
        Manifest m = TestData.manifest();
        try {
            WordTokenizer.fromManifest(m, "<pad>\n<sot>\n<eot>\n<unk>\nred\n".getBytes(StandardCharsets.UTF_8));
            fail("accepted a vocabulary of another export");
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.MODEL_FILE, e.kind());
            assertTrue(e.getMessage(), e.getMessage().contains("vocab_sha256"));
        }
        try {
            new WordTokenizer(List.of("<sot>", "<pad>", "<eot>", "<unk>"), 20);
            fail();
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.TEXT, e.kind());
        }
        try {
            new WordTokenizer(List.of("<pad>", "<sot>", "<eot>", "<unk>", "a", "a"), 20);
            fail();
        } catch (SdkException e) {
            assertTrue(e.getMessage().contains("duplicate"));
        }
        try {
            new WordTokenizer(List.of("<pad>", "<sot>", "<eot>", "<unk>"), 1);
            fail();
        } catch (SdkException e) {
            assertTrue(e.getMessage().contains("context_length"));
        }
    }
}
