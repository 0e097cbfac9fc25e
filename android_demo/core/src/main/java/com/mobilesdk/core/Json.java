package com.mobilesdk.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON parser (RFC 8259) so the core library needs no dependency.
 *
 * <p>Values map to: object -> {@code LinkedHashMap<String, Object>} (key order kept), array ->
 * {@code ArrayList<Object>}, string -> {@code String}, true/false -> {@code Boolean}, null ->
 * {@code null}, number -> {@code Long} when written without fraction or exponent and it fits,
 * else {@code Double} (parsed with {@link Double#parseDouble}, which rounds exactly as Python's
 * {@code float()} does). Python's {@code json.dumps} extensions {@code NaN}, {@code Infinity} and
 * {@code -Infinity} are accepted as doubles.
 */
public final class Json {
    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    /** Parses a whole JSON document; trailing non-whitespace is an error. */
    public static Object parse(String text) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "JSON text is null");
        }
        Json p = new Json(text);
        if (p.s.startsWith("\uFEFF")) {
            p.pos = 1; // tolerate a UTF-8 byte order mark
        }
        p.ws();
        Object v = p.value(0);
        p.ws();
        if (p.pos != p.s.length()) {
            throw p.error("unexpected text after the JSON value");
        }
        return v;
    }

    private IllegalArgumentException error(String what) {
        int line = 1, col = 1;
        for (int i = 0; i < pos && i < s.length(); i++) {
            if (s.charAt(i) == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return new IllegalArgumentException(what + " at line " + line + " column " + col + " (char " + pos + ")");
    }

    private void ws() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                pos++;
            } else {
                break;
            }
        }
    }

    private Object value(int depth) {
        if (depth > 512) {
            throw error("JSON nested too deeply");
        }
        if (pos >= s.length()) {
            throw error("unexpected end of JSON");
        }
        char c = s.charAt(pos);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                literal("true");
                return Boolean.TRUE;
            case 'f':
                literal("false");
                return Boolean.FALSE;
            case 'n':
                literal("null");
                return null;
            case 'N':
                literal("NaN");
                return Double.NaN;
            case 'I':
                literal("Infinity");
                return Double.POSITIVE_INFINITY;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw error("unexpected character '" + c + "'");
        }
    }

    private void literal(String word) {
        if (!s.startsWith(word, pos)) {
            throw error("invalid literal (expected " + word + ")");
        }
        pos += word.length();
    }

    private Map<String, Object> object(int depth) {
        Map<String, Object> m = new LinkedHashMap<>();
        pos++; // {
        ws();
        if (pos < s.length() && s.charAt(pos) == '}') {
            pos++;
            return m;
        }
        while (true) {
            ws();
            if (pos >= s.length() || s.charAt(pos) != '"') {
                throw error("expected a string key");
            }
            String key = string();
            ws();
            if (pos >= s.length() || s.charAt(pos) != ':') {
                throw error("expected ':'");
            }
            pos++;
            ws();
            m.put(key, value(depth + 1)); // a repeated key keeps the last value, as Python does
            ws();
            if (pos >= s.length()) {
                throw error("unexpected end of JSON in an object");
            }
            char c = s.charAt(pos++);
            if (c == '}') {
                return m;
            }
            if (c != ',') {
                pos--;
                throw error("expected ',' or '}'");
            }
        }
    }

    private List<Object> array(int depth) {
        List<Object> a = new ArrayList<>();
        pos++; // [
        ws();
        if (pos < s.length() && s.charAt(pos) == ']') {
            pos++;
            return a;
        }
        while (true) {
            ws();
            a.add(value(depth + 1));
            ws();
            if (pos >= s.length()) {
                throw error("unexpected end of JSON in an array");
            }
            char c = s.charAt(pos++);
            if (c == ']') {
                return a;
            }
            if (c != ',') {
                pos--;
                throw error("expected ',' or ']'");
            }
        }
    }

    private String string() {
        pos++; // opening quote
        StringBuilder b = null;
        int start = pos;
        while (true) {
            if (pos >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(pos);
            if (c == '"') {
                String out = b == null ? s.substring(start, pos) : b.append(s, start, pos).toString();
                pos++;
                return out;
            }
            if (c < 0x20) {
                throw error("control character in a string");
            }
            if (c == '\\') {
                if (b == null) {
                    b = new StringBuilder();
                }
                b.append(s, start, pos);
                pos++;
                if (pos >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(pos++);
                switch (e) {
                    case '"': b.append('"'); break;
                    case '\\': b.append('\\'); break;
                    case '/': b.append('/'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (pos + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        int cp = 0;
                        for (int i = 0; i < 4; i++) {
                            int d = Character.digit(s.charAt(pos + i), 16);
                            if (d < 0) {
                                throw error("bad \\u escape");
                            }
                            cp = cp * 16 + d;
                        }
                        pos += 4;
                        b.append((char) cp); // surrogate pairs arrive as two escapes and join up
                        break;
                    default:
                        pos--;
                        throw error("bad escape '\\" + e + "'");
                }
                start = pos;
            } else {
                pos++;
            }
        }
    }

    private Object number() {
        int start = pos;
        if (s.charAt(pos) == '-') {
            pos++;
            if (s.startsWith("Infinity", pos)) {
                pos += 8;
                return Double.NEGATIVE_INFINITY;
            }
        }
        if (pos >= s.length()) {
            throw error("bad number");
        }
        if (s.charAt(pos) == '0') {
            pos++;
        } else if (s.charAt(pos) >= '1' && s.charAt(pos) <= '9') {
            while (pos < s.length() && Character.isDigit(s.charAt(pos)) && s.charAt(pos) < 128) {
                pos++;
            }
        } else {
            throw error("bad number");
        }
        boolean integral = true;
        if (pos < s.length() && s.charAt(pos) == '.') {
            integral = false;
            pos++;
            int d = pos;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') {
                pos++;
            }
            if (pos == d) {
                throw error("bad number: no digits after '.'");
            }
        }
        if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
            integral = false;
            pos++;
            if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                pos++;
            }
            int d = pos;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') {
                pos++;
            }
            if (pos == d) {
                throw error("bad number: no exponent digits");
            }
        }
        String t = s.substring(start, pos);
        if (integral) {
            try {
                return Long.parseLong(t);
            } catch (NumberFormatException tooBig) {
                return Double.parseDouble(t);
            }
        }
        return Double.parseDouble(t);
    }

    // ---- typed access helpers, used by the manifest and golden readers ----

    /** {@code v} as a JSON object; {@code where} names it in the error. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> asObject(Object v, String where) {
        if (!(v instanceof Map)) {
            throw new IllegalArgumentException(where + " must be a JSON object, got " + typeName(v));
        }
        return (Map<String, Object>) v;
    }

    @SuppressWarnings("unchecked")
    public static List<Object> asList(Object v, String where) {
        if (!(v instanceof List)) {
            throw new IllegalArgumentException(where + " must be a JSON array, got " + typeName(v));
        }
        return (List<Object>) v;
    }

    public static double asDouble(Object v, String where) {
        if (v instanceof Long || v instanceof Double) {
            return ((Number) v).doubleValue();
        }
        throw new IllegalArgumentException(where + " must be a number, got " + typeName(v));
    }

    public static long asLong(Object v, String where) {
        if (v instanceof Long) {
            return (Long) v;
        }
        throw new IllegalArgumentException(where + " must be an integer, got " + typeName(v));
    }

    public static int asInt(Object v, String where) {
        long x = asLong(v, where);
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(where + " is out of the int range: " + x);
        }
        return (int) x;
    }

    public static String asString(Object v, String where) {
        if (v instanceof String) {
            return (String) v;
        }
        throw new IllegalArgumentException(where + " must be a string, got " + typeName(v));
    }

    public static double[] asDoubleArray(Object v, String where) {
        List<Object> l = asList(v, where);
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = asDouble(l.get(i), where + "[" + i + "]");
        }
        return out;
    }

    public static int[] asIntArray(Object v, String where) {
        List<Object> l = asList(v, where);
        int[] out = new int[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = asInt(l.get(i), where + "[" + i + "]");
        }
        return out;
    }

    public static double[][] asDoubleMatrix(Object v, String where) {
        List<Object> l = asList(v, where);
        double[][] out = new double[l.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = asDoubleArray(l.get(i), where + "[" + i + "]");
        }
        return out;
    }

    public static int[][] asIntMatrix(Object v, String where) {
        List<Object> l = asList(v, where);
        int[][] out = new int[l.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = asIntArray(l.get(i), where + "[" + i + "]");
        }
        return out;
    }

    /** The JSON type name of a parsed value, for error messages. */
    public static String typeName(Object v) {
        if (v == null) return "null";
        if (v instanceof Map) return "object";
        if (v instanceof List) return "array";
        if (v instanceof String) return "string";
        if (v instanceof Boolean) return "boolean";
        if (v instanceof Long) return "integer";
        if (v instanceof Double) return "number";
        return v.getClass().getSimpleName();
    }
}
