package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class TokenizerTest {
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
    public void vocabularyMatchesTheManifest() {
        Tokenizer tok = TestData.tokenizer();
        Manifest m = TestData.manifest();
        assertEquals(m.tokenizer.vocabSize, tok.vocabSize());
        assertEquals(m.tokenizer.contextLength, tok.contextLength);
        assertEquals(List.of(0, 1, 2, 3), List.of(tok.padId, tok.sotId, tok.eotId, tok.unkId));
    }

    @Test
    public void splitsLikePython() {
        // expected values printed by mobile_sdk.tokenizer.split_words
        assertEquals(List.of("hello", "world", "it", "s", "a", "test"), Tokenizer.splitWords("Hello, WORLD!  it's  a test"));
        assertEquals(List.of("café", "École", "日本", "a", "b", "c"), Tokenizer.splitWords("café ÉCOLE 日本\tA\u000bB\u000cC"));
        assertEquals(List.of("under", "score", "dash", "dot", "slash"), Tokenizer.splitWords("under_score-dash.dot/slash"));
        assertEquals(List.of("\uD83D\uDE00smile\uD83D\uDE00", "red"), Tokenizer.splitWords("\uD83D\uDE00smile\uD83D\uDE00 RED"));
        assertEquals(List.of("red\u00a0blue"), Tokenizer.splitWords("red\u00a0blue")); // NBSP is not ASCII whitespace
        assertEquals(List.of(), Tokenizer.splitWords(" \t\n\r\u000b\f!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"));
    }

    @Test
    public void encodesUnknownTruncatesAndPads() {
        Tokenizer tok = TestData.tokenizer();
        int[] ids = tok.encode("RED red Red");
        int red = tok.vocab().indexOf("red");
        int[] want = new int[tok.contextLength];
        want[0] = tok.sotId;
        want[1] = want[2] = want[3] = red;
        want[4] = tok.eotId;
        assertArrayEquals(want, ids);
        assertEquals(tok.unkId, tok.encode("red\u00a0blue")[1]);
        int[] empty = tok.encode("");
        assertEquals(tok.sotId, empty[0]);
        assertEquals(tok.eotId, empty[1]);
        StringBuilder longText = new StringBuilder();
        for (int i = 0; i < 3 * tok.contextLength; i++) {
            longText.append("red ");
        }
        int[] t = tok.encode(longText.toString());
        assertEquals(tok.contextLength, t.length);
        assertEquals(tok.eotId, t[t.length - 1]);
        assertEquals(red, t[t.length - 2]);
        assertEquals("red red red", tok.decode(ids));
    }

    @Test
    public void splitLinesLikePython() {
        assertEquals(List.of("a", "b", "", "c"), Tokenizer.splitLines("a\r\nb\r\rc\n"));
        assertEquals(List.of("a", "b"), Tokenizer.splitLines("a\u2028b"));
        assertEquals(List.of(), Tokenizer.splitLines(""));
    }

    @Test
    public void rejectsBadVocabularies() {
        Manifest m = TestData.manifest();
        try {
            Tokenizer.fromManifest(m, "<pad>\n<sot>\n<eot>\n<unk>\nred\n".getBytes(StandardCharsets.UTF_8));
            fail("accepted a vocabulary of another export");
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.MODEL_FILE, e.kind());
            assertTrue(e.getMessage(), e.getMessage().contains("vocab_sha256"));
        }
        try {
            new Tokenizer(List.of("<sot>", "<pad>", "<eot>", "<unk>"), 20);
            fail();
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.TEXT, e.kind());
        }
        try {
            new Tokenizer(List.of("<pad>", "<sot>", "<eot>", "<unk>", "a", "a"), 20);
            fail();
        } catch (SdkException e) {
            assertTrue(e.getMessage().contains("duplicate"));
        }
        try {
            new Tokenizer(List.of("<pad>", "<sot>", "<eot>", "<unk>"), 1);
            fail();
        } catch (SdkException e) {
            assertTrue(e.getMessage().contains("context_length"));
        }
    }
}
