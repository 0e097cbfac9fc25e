package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/** Where the tests find their data, the parsed golden vectors, and the error assertion the tests share. */
final class TestData {
    private TestData() {
    }

    private static File goldenDir;
    private static Map<String, Object> golden;
    private static Tokenizer tokenizer;

    /**
     * The golden folder under test: -Dgolden.dir (run_core_tests.sh runs every test class once
     * with tests/golden, the built-in word-tokenizer model, and once with tests/golden_bpe, a CLIP
     * BPE model), else the repository's tests/golden, found by walking up from the working
     * directory (the script and Gradle run from android_demo/ or android_demo/core/).
     */
    static synchronized File goldenDir() {
        if (goldenDir != null) {
            return goldenDir;
        }
        String prop = System.getProperty("golden.dir");
        if (prop != null && !prop.isEmpty()) {
            goldenDir = new File(prop);
        } else {
            File d = new File("").getAbsoluteFile();
            while (d != null && !new File(d, "tests/golden/manifest.json").isFile()) {
                d = d.getParentFile();
            }
            goldenDir = d == null ? new File("../tests/golden") : new File(d, "tests/golden");
        }
        if (!new File(goldenDir, "golden.json").isFile() || !new File(goldenDir, "manifest.json").isFile()) {
            throw new IllegalStateException("golden vectors not found in " + goldenDir.getAbsolutePath()
                    + " (need manifest.json, golden.json, golden/*.png and the tokenizer's file); pass -Dgolden.dir=...");
        }
        return goldenDir;
    }

    static synchronized Map<String, Object> golden() {
        if (golden == null) {
            golden = Json.asObject(Json.parse(read(new File(goldenDir(), "golden.json"))), "golden.json");
        }
        return golden;
    }

    static Manifest manifest() {
        return Manifest.load(new File(goldenDir(), "manifest.json"));
    }

    /** The golden folder's manifest.json as text, for tests that edit it. */
    static String manifestText() {
        return read(new File(goldenDir(), "manifest.json"));
    }

    /** Runs {@code f}, which must throw an SdkException of {@code kind} whose message contains {@code fragment}. */
    static SdkException expectError(SdkException.Kind kind, String fragment, Supplier<?> f) {
        try {
            f.get();
        } catch (SdkException e) {
            assertEquals(e.getMessage(), kind, e.kind());
            assertTrue("message '" + e.getMessage() + "' should contain '" + fragment + "'", e.getMessage().contains(fragment));
            return e;
        }
        fail("no error; expected " + kind + " containing '" + fragment + "'");
        return null;
    }

    /** The manifest's tokenizer through the apps' factory (made once: the BPE one reads 49k merges). */
    static synchronized Tokenizer tokenizer() {
        if (tokenizer == null) {
            tokenizer = Tokenizer.fromManifest(manifest(), goldenDir());
        }
        return tokenizer;
    }

    static List<Object> list(Map<String, Object> m, String key) {
        return Json.asList(m.get(key), key);
    }

    static Map<String, Object> obj(Object v, String where) {
        return Json.asObject(v, where);
    }

    static String read(File f) {
        try {
            return new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + f, e);
        }
    }

    static byte[] bytes(File f) {
        try {
            return Files.readAllBytes(f.toPath());
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + f, e);
        }
    }

    /** A test resource (core/src/test/resources on the classpath). */
    static byte[] resource(String path) {
        try (InputStream in = TestData.class.getResourceAsStream("/" + path)) {
            if (in == null) {
                throw new IllegalStateException("test resource " + path + " not on the classpath");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource " + path, e);
        }
    }

    static byte[] toBytes(int[] v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] < 0 || v[i] > 255) {
                throw new IllegalArgumentException("not a uint8: " + v[i]);
            }
            b[i] = (byte) v[i];
        }
        return b;
    }

    /** Index of the first differing byte, or -1. */
    static int firstDiff(byte[] a, byte[] b) {
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            if (a[i] != b[i]) {
                return i;
            }
        }
        return a.length == b.length ? -1 : Math.min(a.length, b.length);
    }
}
