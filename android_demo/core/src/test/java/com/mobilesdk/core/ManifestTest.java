package com.mobilesdk.core;

import static com.mobilesdk.core.TestData.expectError;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.Test;

public class ManifestTest {
    @Test
    public void readsTheShippedManifest() {
        Manifest m = TestData.manifest();
        assertEquals(Manifest.SCHEMA_VERSION, m.schemaVersion);
        assertTrue(m.embedDim > 0);
        assertTrue(m.logitScale > 0);
        assertTrue(m.imageSize > 0);
        assertFalse(m.tasks.isEmpty());
        assertNotNull(m.tasks.get(m.defaultTask()));
        assertFalse(m.artifacts.isEmpty());
        for (Manifest.Artifact a : m.artifacts) {
            TensorSpec in = a.inputs.get(0), out = a.outputs.get(0);
            if (a.tower.equals("image")) {
                assertEquals(a + " pixels", 3 * m.imageSize * m.imageSize, in.elementCount());
            } else {
                assertEquals(a + " ids", m.tokenizer.contextLength, in.elementCount());
            }
            assertEquals(a + " embedding", m.embedDim, out.elementCount());
        }
    }

    @Test
    public void readsThePreprocessingSpec() {
        Manifest m = TestData.manifest();
        Manifest.Preprocessing p = m.preprocessing;
        assertEquals(m.imageSize, p.imageSize);
        assertEquals(Manifest.Preprocessing.CENTER_CROP, p.resize); // also the built-in's older description
        p.requireSupported();
        if (p.mean != null) {
            assertEquals(3, p.mean.length);
            assertEquals(3, p.std.length);
        }
        if (m.tokenizer.kind.equals("clip_bpe")) { // an open_clip model records its own normalization
            assertNotNull(p.mean);
            assertEquals("bicubic", p.interpolation);
        }
    }

    @Test
    public void unimplementedResizeRulesAreClearErrors() {
        String t = TestData.manifestText().replaceFirst("\"resize\":\\s*\"[^\"]*\"", "\"resize\": \"squash\"");
        Manifest m = Manifest.parse(t, "m.json");
        assertEquals("squash", m.preprocessing.resize);
        RawImage img = RawImage.fromArgb(2, 3, new int[6], 1);
        expectError(SdkException.Kind.MANIFEST, "resize rule 'squash' is not implemented",
                () -> Preprocess.preprocess(img, m.preprocessing));
        expectError(SdkException.Kind.MANIFEST, "'squash'", () -> new Pipeline(m, TestData.tokenizer(), null));
        String none = TestData.manifestText().replaceFirst("\"resize\":\\s*\"[^\"]*\",", "");
        Manifest d = Manifest.parse(none, "m.json");
        assertEquals(Manifest.Preprocessing.CENTER_CROP, d.preprocessing.resize); // absent: the default
        assertEquals(3 * d.imageSize * d.imageSize, Preprocess.preprocess(img, d.preprocessing).length);
    }

    @Test
    public void defaultsToTheCpuInt8TfliteVariant() {
        Manifest m = TestData.manifest();
        if (m.precisions("tflite").isEmpty()) {
            return; // nothing to choose from
        }
        String p = m.defaultPrecision("tflite");
        Manifest.Artifact img = m.find("tflite", "image", p);
        assertNotNull(img);
        assertTrue("default TFLite variant '" + img.variant + "' is the CPU one",
                img.variant.contains("CPU") || p.equals("int8_cpu"));
        if (m.precisions("tflite").contains("int8_cpu")) {
            assertEquals("int8_cpu", p);
        }
        // make demo exports ExecuTorch's default, int8_dynamic, which the app must pick
        assertTrue(m.precisions("executorch").contains("int8_dynamic"));
        assertEquals("int8_dynamic", m.defaultPrecision("executorch"));
    }

    @Test
    public void theManifestsDefaultMarkDecides() {
        Manifest m = TestData.manifest();
        if (!m.precisions("tflite").contains("int8") || !m.precisions("tflite").contains("int8_cpu")) {
            return; // nothing to choose from
        }
        assertTrue(m.find("tflite", "image", "int8_cpu").isDefault);
        assertFalse(m.find("tflite", "image", "int8").isDefault);
        // move the mark to the full-integer variant: the app follows the manifest, not a rule of its own
        String text = TestData.manifestText()
                .replaceAll("(?s)(\"precision\":\\s*\"int8_cpu\",.*?\"default\":\\s*)true", "$1false")
                .replaceAll("(?s)(\"precision\":\\s*\"int8\",.*?\"default\":\\s*)false", "$1true");
        Manifest moved = Manifest.parse(text, "moved");
        assertEquals("int8", moved.defaultPrecision("tflite"));
        assertTrue(moved.find("tflite", "text", "int8").isDefault);
        String bad = TestData.manifestText().replaceFirst("\"default\":\\s*true", "\"default\": \"yes\"");
        expectError(SdkException.Kind.MANIFEST, ".default must be true or false", () -> Manifest.parse(bad, "bad"));
    }

    @Test
    public void unknownSchemaVersionIsAClearError() {
        String t = TestData.manifestText().replaceFirst("\"schema_version\":\\s*1", "\"schema_version\": 2");
        assertTrue(t.contains("\"schema_version\": 2"));
        expectError(SdkException.Kind.MANIFEST, "schema_version 2 is not supported", () -> Manifest.parse(t, "m.json"));
        String sdk = (String) TestData.obj(Json.parse(TestData.manifestText()), "manifest").get("sdk_version");
        expectError(SdkException.Kind.MANIFEST, "written by mobile-sdk " + sdk + "; update the app",
                () -> Manifest.parse(t, "m.json"));
        String older = TestData.manifestText().replaceFirst("\"schema_version\":\\s*1", "\"schema_version\": 0");
        expectError(SdkException.Kind.MANIFEST, "written by mobile-sdk " + sdk + "; re-export with a mobile-sdk",
                () -> Manifest.parse(older, "m.json"));
        String t2 = TestData.manifestText().replaceFirst("\"schema_version\":\\s*1", "\"schema_version\": \"1\"");
        expectError(SdkException.Kind.MANIFEST, "schema_version must be an integer", () -> Manifest.parse(t2, "m.json"));
        String t3 = TestData.manifestText().replaceFirst("\"schema_version\":\\s*1,", "");
        expectError(SdkException.Kind.MANIFEST, "lacks 'schema_version'", () -> Manifest.parse(t3, "m.json"));
        String t4 = TestData.manifestText().replaceFirst("\"mobile-sdk-manifest\"", "\"something-else\"");
        expectError(SdkException.Kind.MANIFEST, "expected 'mobile-sdk-manifest'", () -> Manifest.parse(t4, "m.json"));
    }

    @Test
    public void malformedManifestsAreClearErrors() {
        expectError(SdkException.Kind.MANIFEST, "not valid JSON", () -> Manifest.parse("{\"schema\": ", "m.json"));
        expectError(SdkException.Kind.MANIFEST, "not a JSON object", () -> Manifest.parse("[1]", "m.json"));
        String noDim = TestData.manifestText().replaceFirst("\"embed_dim\":\\s*\\d+,", "");
        expectError(SdkException.Kind.MANIFEST, "model lacks 'embed_dim'", () -> Manifest.parse(noDim, "m.json"));
        String badTower = TestData.manifestText().replaceFirst("\"tower\":\\s*\"image\"", "\"tower\": \"audio\"");
        expectError(SdkException.Kind.MANIFEST, "tower 'audio' not in", () -> Manifest.parse(badTower, "m.json"));
        String badShape = TestData.manifestText().replaceFirst("\"shape\":\\s*\\[\\s*1,", "\"shape\": [0,");
        expectError(SdkException.Kind.MANIFEST, "shape must be positive ints", () -> Manifest.parse(badShape, "m.json"));
        String escape = TestData.manifestText().replaceFirst("\"file\":\\s*\"", "\"file\": \"../../");
        expectError(SdkException.Kind.MANIFEST, "inside the export folder", () -> Manifest.parse(escape, "m.json"));
    }

    @Test
    public void missingManifestIsAClearError() {
        File nowhere = new File(TestData.goldenDir(), "no-such-folder");
        expectError(SdkException.Kind.MANIFEST, "manifest not found", () -> Manifest.load(nowhere));
    }

    @Test
    public void missingModelFileIsAClearError() {
        Manifest m = TestData.manifest();
        Manifest.Artifact a = m.artifacts.get(0);
        File empty = new File(System.getProperty("java.io.tmpdir"), "mobilesdk-empty-" + System.nanoTime());
        assertTrue(empty.mkdirs());
        try {
            SdkException e = expectError(SdkException.Kind.MODEL_FILE, "is missing",
                    () -> Manifest.resolve(empty, a, false));
            assertTrue(e.getMessage().contains(a.file));
            expectError(SdkException.Kind.MODEL_FILE, "is missing", () -> {
                m.checkFiles(empty, false);
                return null;
            });
            String tokFile = m.tokenizer.files().get(0);
            SdkException t = expectError(SdkException.Kind.MODEL_FILE, "is missing", () -> Tokenizer.fromManifest(m, empty));
            assertTrue(t.getMessage(), t.getMessage().contains(tokFile));
        } finally {
            assertTrue(empty.delete());
        }
    }

    @Test
    public void alteredModelFileFailsTheHashCheck() throws IOException {
        Manifest m = TestData.manifest();
        Manifest.Artifact a = m.artifacts.get(0);
        File dir = Files.createTempDirectory("mobilesdk-models").toFile();
        File f = new File(dir, a.file);
        assertTrue(f.getParentFile().isDirectory() || f.getParentFile().mkdirs());
        byte[] content = "not the model".getBytes(StandardCharsets.UTF_8);
        Files.write(f.toPath(), content);
        try {
            assertEquals(f, Manifest.resolve(dir, a, false)); // present: fine without the check
            expectError(SdkException.Kind.MODEL_FILE, "does not match its sha256", () -> Manifest.resolve(dir, a, true));
            // a manifest whose sha256 is this file's accepts it
            String t = TestData.manifestText().replace(a.sha256, Manifest.sha256(content));
            Manifest m2 = Manifest.parse(t, "m.json");
            assertEquals(f, Manifest.resolve(dir, m2.find(a.platform, a.tower, a.precision), true));
        } finally {
            Files.delete(f.toPath());
            for (File p = f.getParentFile(); !p.equals(dir.getParentFile()); p = p.getParentFile()) {
                Files.delete(p.toPath());
            }
        }
    }
}
