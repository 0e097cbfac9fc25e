package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void parsesValuesAndKeepsKeyOrder() {
        Map<String, Object> m = Json.asObject(Json.parse(
                " {\"b\": [1, -2, 3.5, 1e-05, -0.0, 12345678901234], \"a\": {\"x\": null, \"t\": true, \"f\": false},"
                        + " \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"} "), "root");
        assertEquals(List.of("b", "a", "s"), List.copyOf(m.keySet()));
        List<Object> b = Json.asList(m.get("b"), "b");
        assertEquals(1L, b.get(0));
        assertEquals(-2L, b.get(1));
        assertEquals(3.5, b.get(2));
        assertEquals(1e-05, b.get(3));
        assertEquals(-0.0, b.get(4));
        assertEquals(12345678901234L, b.get(5));
        Map<String, Object> a = Json.asObject(m.get("a"), "a");
        assertTrue(a.containsKey("x"));
        assertNull(a.get("x"));
        assertEquals(Boolean.TRUE, a.get("t"));
        assertEquals(Boolean.FALSE, a.get("f"));
        assertEquals("q\"\\/\b\f\n\r\t\u00e9\ud83d\ude00", m.get("s"));
    }

    @Test
    public void hugeIntegersBecomeDoublesAndNonStandardNumbersAreRefused() {
        List<Object> l = Json.asList(Json.parse("[123456789012345678901234567890, -0]"), "l");
        assertEquals(1.2345678901234568e29, (Double) l.get(0), 1e15);
        assertEquals(0L, l.get(1));
        for (String s : new String[] {"[NaN]", "[Infinity]", "[-Infinity]"}) {  // the SDK writes standard JSON only
            try {
                Json.parse(s);
                fail("accepted " + s);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().startsWith("invalid JSON"));
            }
        }
    }

    @Test
    public void aRepeatedKeyKeepsItsLastValueAsInPython() {
        assertEquals(2L, Json.asObject(Json.parse("{\"a\": 1, \"a\": 2}"), "m").get("a"));
    }

    @Test
    public void doublesRoundLikePython() {
        // Python: float("0.1234567") etc.; Double.parseDouble is correctly rounded too
        assertEquals(0.1234567, Json.asDouble(Json.parse("0.1234567"), "x"), 0.0);
        assertEquals(Double.doubleToLongBits(-0.0417383), Double.doubleToLongBits(Json.asDouble(Json.parse("-0.0417383"), "x")));
    }

    @Test
    public void rejectsMalformedJson() {
        String[] bad = {"", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "[1 2]", "01", "1.", ".5", "1e", "\"abc",
                "\"a\\x\"", "tru", "nul", "[1]]", "{\"a\":1} x", "-", "+1", "{1:2}", "{'a': 1}", "[1] // c"};
        for (String s : bad) {
            try {
                Json.parse(s);
                fail("accepted malformed JSON: " + s);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().startsWith("invalid JSON"));
            }
        }
    }

    @Test
    public void typedAccessorsNameTheField() {
        try {
            Json.asInt(Json.parse("\"7\""), "model.embed_dim");
            fail();
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("model.embed_dim must be an integer, got string"));
        }
        try {
            Json.asInt(Json.parse("1.5"), "x");
            fail();
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("got number"));
        }
    }
}
