package com.mobilesdk.core;

import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.EOFException;
import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON for the core library: parsing is Gson's strict {@link JsonReader} (RFC 8259; the SDK writes
 * standard JSON only, no NaN or Infinity); this class turns the document into plain Java values and
 * gives typed accessors that name the field in their errors.
 *
 * <p>Values map to: object -> {@code LinkedHashMap<String, Object>} (key order kept; a repeated
 * key is an error), array -> {@code ArrayList<Object>}, string -> {@code String}, true/false ->
 * {@code Boolean}, null -> {@code null}, number -> {@code Long} when written without fraction or
 * exponent and it fits, else {@code Double} (parsed with {@link Double#parseDouble}, which rounds
 * exactly as Python's {@code float()} does).
 */
public final class Json {
    private Json() {}

    /** Parses a whole JSON document; trailing non-whitespace is an error. */
    public static Object parse(String text) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "JSON text is null");
        }
        JsonReader reader = new JsonReader(new StringReader(text));
        reader.setLenient(false);
        try {
            Object value = read(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new IllegalArgumentException("invalid JSON: trailing data after the value at " + where(reader));
            }
            return value;
        } catch (EOFException e) {
            throw new IllegalArgumentException("invalid JSON: the text ends before the value does", e);
        } catch (IOException | IllegalStateException | NumberFormatException e) {
            throw new IllegalArgumentException("invalid JSON: " + e.getMessage(), e);
        }
    }

    private static String where(JsonReader reader) {
        String s = reader.toString();  // "JsonReader at line L column C path $..."
        int i = s.indexOf(" at line ");
        return i < 0 ? s : s.substring(i + 4);
    }

    private static Object read(JsonReader r) throws IOException {
        switch (r.peek()) {
            case BEGIN_OBJECT: {
                Map<String, Object> m = new LinkedHashMap<>();
                r.beginObject();
                while (r.hasNext()) {
                    String key = r.nextName();
                    m.put(key, read(r));  // a repeated key: the last value, as Python's json reads it
                }
                r.endObject();
                return m;
            }
            case BEGIN_ARRAY: {
                List<Object> l = new ArrayList<>();
                r.beginArray();
                while (r.hasNext()) {
                    l.add(read(r));
                }
                r.endArray();
                return l;
            }
            case STRING:
                return r.nextString();
            case NUMBER:
                return number(r.nextString());
            case BOOLEAN:
                return r.nextBoolean();
            case NULL:
                r.nextNull();
                return null;
            default:
                throw new IllegalArgumentException("invalid JSON: unexpected " + r.peek() + " at " + where(r));
        }
    }

    private static Object number(String t) {
        boolean integral = true;
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '.' || c == 'e' || c == 'E') {
                integral = false;
                break;
            }
        }
        if (integral) {
            try {
                return Long.parseLong(t);
            } catch (NumberFormatException tooBig) {
                // falls through to a double, as Python's float() would read it
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
