package com.mobilesdk.core;

import static com.mobilesdk.core.TestData.expectError;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.Test;

/**
 * The label bank ({@code mobile-sdk export --label-bank}): the reader's checks on files made here
 * (a good one, a wrong sha256, wrong sizes, a wrong schema), scoring an image against it, an
 * image-tower-only pipeline, and the replay of golden.json's label_bank block (in a golden folder
 * whose export has a bank: tests/golden_bpe) through the scoring and the pipeline.
 */
public class LabelBankTest {
    private static final List<String> CLASSES = Arrays.asList("circle", "square", "triangle");

    // ------------------------------------------------------------------ helpers

    /** Deterministic unit rows of float32 values, one per class. */
    private static double[][] rows(int n, int dim) {
        double[][] out = new double[n][dim];
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int k = 0; k < dim; k++) {
                out[i][k] = Math.sin(1.7 * (i + 1) * (k + 1) + i);
                ss += out[i][k] * out[i][k];
            }
            for (int k = 0; k < dim; k++) {
                out[i][k] = (float) (out[i][k] / Math.sqrt(ss));
            }
        }
        return out;
    }

    /** label_bank.json text as mobile_sdk/label_bank.py writes it. */
    private static String bankJson(String schema, Object version, List<String> classes, int dim, double[][] emb) {
        StringBuilder b = new StringBuilder();
        b.append("{\"schema\": \"").append(schema).append("\", \"schema_version\": ").append(version)
                .append(", \"classes\": [");
        for (int i = 0; i < classes.size(); i++) {
            b.append(i == 0 ? "" : ", ").append('"').append(classes.get(i)).append('"');
        }
        b.append("], \"templates\": [\"a {}\"], \"embed_dim\": ").append(dim).append(", \"normalized\": true, ")
                .append("\"embeddings\": [");
        for (int i = 0; i < emb.length; i++) {
            b.append(i == 0 ? "[" : ", [");
            for (int k = 0; k < emb[i].length; k++) {
                b.append(k == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%s", emb[i][k]));
            }
            b.append(']');
        }
        return b.append("]}\n").toString();
    }

    /** The golden manifest with a label_bank entry (a repeated key keeps the last value, as in Python). */
    private static String manifestWithBank(String file, String sha256, int classes, int embedDim) {
        String t = TestData.manifestText().trim();
        String entry = String.format(Locale.ROOT, "{\"file\": \"%s\", \"sha256\": \"%s\", \"classes\": %d, "
                + "\"embed_dim\": %d, \"templates\": [\"a {}\"]}", file, sha256, classes, embedDim);
        return t.substring(0, t.lastIndexOf('}')) + ", \"label_bank\": " + entry + "}\n";
    }

    /** A folder holding label_bank.json with {@code text}. */
    private static File folderWith(String text) {
        try {
            File dir = Files.createTempDirectory("mobilesdk-bank").toFile();
            Files.write(new File(dir, "label_bank.json").toPath(), text.getBytes(StandardCharsets.UTF_8));
            dir.deleteOnExit();
            new File(dir, "label_bank.json").deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String sha(String text) {
        return Manifest.sha256(text.getBytes(StandardCharsets.UTF_8));
    }

    /** The golden manifest, parsed, with an entry for a label_bank.json holding {@code text} (its sha256, the 3 classes). */
    private static Manifest manifestFor(String text, int embedDim) {
        return Manifest.parse(manifestWithBank("label_bank.json", sha(text), CLASSES.size(), embedDim), "m.json");
    }

    /** Answers every image with one fixed embedding; no text tower. */
    static final class ImageOnlyBackend implements Backend {
        final float[] embedding;
        int calls;

        ImageOnlyBackend(float[] embedding) {
            this.embedding = embedding;
        }

        public String name() {
            return "image-only";
        }

        public float[] encodeImage(float[] nchw) {
            calls++;
            return embedding.clone();
        }

        public float[] encodeText(int[] ids) {
            throw new AssertionError("no text tower");
        }

        @Override
        public boolean hasTextTower() {
            return false;
        }

        public void close() {
        }
    }

    // ------------------------------------------------------------------ the reader

    @Test
    public void readsAGoodFile() {
        int dim = TestData.manifest().embedDim;
        double[][] emb = rows(CLASSES.size(), dim);
        String text = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, emb);
        Manifest m = manifestFor(text, dim);
        assertNotNull(m.labelBank);
        assertEquals("label_bank.json", m.labelBank.file);
        assertEquals(CLASSES.size(), m.labelBank.classes);
        assertEquals(dim, m.labelBank.embedDim);
        assertEquals(Arrays.asList("a {}"), m.labelBank.templates);
        LabelBank bank = LabelBank.fromManifest(m, folderWith(text));
        assertEquals(CLASSES, bank.classes);
        assertEquals(Arrays.asList("a {}"), bank.templates);
        assertEquals(dim, bank.embedDim);
        assertEquals(CLASSES.size(), bank.size());
        for (int i = 0; i < emb.length; i++) {
            assertArrayEquals("row " + i + " exactly as written", emb[i], bank.embedding(i), 0.0);
        }
        // the scores are those of Scoring (logit_scale * cosine in float64)
        double[] img = new double[dim];
        for (int k = 0; k < dim; k++) {
            img[k] = emb[1][k] * 3 + emb[2][k];
        }
        double[] s = bank.scores(img, m.logitScale);
        for (int j = 0; j < s.length; j++) {
            assertEquals(Scoring.score(img, emb[j], m.logitScale), s[j], 0.0);
        }
        assertEquals(1, Scoring.ranking(s)[0]);
        expectError(SdkException.Kind.INVALID_ARGUMENT, "embed_dim", () -> bank.scores(new double[dim + 1], 1.0));
        // also from bytes, and through a FileSource
        assertEquals(CLASSES, LabelBank.parse(m, text.getBytes(StandardCharsets.UTF_8)).classes);
    }

    @Test
    public void shaMismatchIsAClearError() throws IOException {
        int dim = TestData.manifest().embedDim;
        String text = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, rows(CLASSES.size(), dim));
        Manifest m = manifestFor(text, dim);
        String altered = text.replace("\"circle\"", "\"circles\"");
        SdkException e = expectError(SdkException.Kind.MODEL_FILE, "does not match its sha256",
                () -> LabelBank.fromManifest(m, folderWith(altered)));
        assertTrue(e.getMessage(), e.getMessage().contains("label_bank.json") && e.getMessage().contains(sha(altered)));
        File empty = Files.createTempDirectory("mobilesdk-nobank").toFile();
        empty.deleteOnExit();
        expectError(SdkException.Kind.MODEL_FILE, "label bank label_bank.json is missing",
                () -> LabelBank.fromManifest(m, empty));
    }

    @Test
    public void wrongDimensionsAreClearErrors() {
        int dim = TestData.manifest().embedDim;
        // the manifest's entry against the model
        String good = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, rows(CLASSES.size(), dim));
        expectError(SdkException.Kind.MANIFEST, "label_bank.embed_dim " + (dim + 1) + " differs from model.embed_dim " + dim,
                () -> manifestFor(good, dim + 1));
        expectError(SdkException.Kind.MANIFEST, "label_bank.classes must be >= 1",
                () -> Manifest.parse(manifestWithBank("label_bank.json", sha(good), 0, dim), "m.json"));
        expectError(SdkException.Kind.MANIFEST, "inside the export folder",
                () -> Manifest.parse(manifestWithBank("../label_bank.json", sha(good), CLASSES.size(), dim), "m.json"));
        // the file's embed_dim against the model
        String small = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim - 1, rows(CLASSES.size(), dim - 1));
        Manifest ms = manifestFor(small, dim);
        expectError(SdkException.Kind.MODEL_FILE, "embed_dim " + (dim - 1) + " differs from the model's embed_dim " + dim,
                () -> LabelBank.fromManifest(ms, folderWith(small)));
        // a row of the wrong length
        double[][] ragged = rows(CLASSES.size(), dim);
        ragged[2] = Arrays.copyOf(ragged[2], dim - 3);
        String r = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, ragged);
        Manifest mr = manifestFor(r, dim);
        expectError(SdkException.Kind.MODEL_FILE, "embeddings[2] has " + (dim - 3) + " values, embed_dim is " + dim,
                () -> LabelBank.fromManifest(mr, folderWith(r)));
        // fewer rows than classes
        String fewer = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, rows(2, dim));
        Manifest mf = manifestFor(fewer, dim);
        expectError(SdkException.Kind.MODEL_FILE, "has 2 embeddings for 3 classes",
                () -> LabelBank.fromManifest(mf, folderWith(fewer)));
        // the class count against the manifest's
        Manifest mc = Manifest.parse(manifestWithBank("label_bank.json", sha(good), 4, dim), "m.json");
        expectError(SdkException.Kind.MODEL_FILE, "has 3 classes, the manifest's label_bank says 4",
                () -> LabelBank.fromManifest(mc, folderWith(good)));
    }

    @Test
    public void wrongSchemaIsAClearError() {
        int dim = TestData.manifest().embedDim;
        double[][] emb = rows(CLASSES.size(), dim);
        String other = bankJson("something-else", 1, CLASSES, dim, emb);
        Manifest m1 = manifestFor(other, dim);
        expectError(SdkException.Kind.MODEL_FILE, "schema is 'something-else', expected 'mobile-sdk.label_bank'",
                () -> LabelBank.fromManifest(m1, folderWith(other)));
        String v2 = bankJson(LabelBank.SCHEMA, 2, CLASSES, dim, emb);
        Manifest m2 = manifestFor(v2, dim);
        expectError(SdkException.Kind.MODEL_FILE, "schema_version 2 is not supported",
                () -> LabelBank.fromManifest(m2, folderWith(v2)));
        String notJson = "{\"schema\": ";
        Manifest m3 = manifestFor(notJson, dim);
        expectError(SdkException.Kind.MODEL_FILE, "is not valid JSON", () -> LabelBank.fromManifest(m3, folderWith(notJson)));
        String twice = bankJson(LabelBank.SCHEMA, 1, Arrays.asList("circle", "square", "circle"), dim, emb);
        Manifest m4 = manifestFor(twice, dim);
        expectError(SdkException.Kind.MODEL_FILE, "named twice", () -> LabelBank.fromManifest(m4, folderWith(twice)));
        // a manifest without a bank
        Manifest plain = Manifest.parse(TestData.manifestText()
                .replace("\"label_bank\"", "\"no_label_bank\""), "m.json");
        assertNull(plain.labelBank);
        expectError(SdkException.Kind.MANIFEST, "--label-bank", () -> LabelBank.fromManifest(plain, TestData.goldenDir()));
    }

    // ------------------------------------------------------------------ scoring and the pipeline

    @Test
    public void pipelineClassifiesWithTheImageTowerAlone() {
        int dim = TestData.manifest().embedDim;
        double[][] emb = rows(CLASSES.size(), dim);
        String text = bankJson(LabelBank.SCHEMA, 1, CLASSES, dim, emb);
        Manifest m = manifestFor(text, dim);
        LabelBank bank = LabelBank.fromManifest(m, folderWith(text));
        float[] image = new float[dim];
        for (int k = 0; k < dim; k++) {
            image[k] = (float) (emb[2][k] + 0.5 * emb[0][k]);
        }
        ImageOnlyBackend backend = new ImageOnlyBackend(image);
        Pipeline p = new Pipeline(m, null, backend); // no tokenizer, no text tower
        assertFalse(p.hasTextTower());
        byte[] px = new byte[m.imageSize * m.imageSize * 3];
        Pipeline.Classification c = p.classify(px, bank);
        assertEquals(CLASSES, c.labels);
        assertEquals(1, backend.calls);
        double[] want = new double[CLASSES.size()];
        for (int j = 0; j < want.length; j++) {
            want[j] = Scoring.score(Scoring.toDouble(image), emb[j], m.logitScale);
        }
        assertArrayEquals(want, c.scores, 0.0);
        assertArrayEquals(Scoring.softmax(want), c.probs, 0.0);
        assertArrayEquals(Scoring.ranking(want), c.ranking);
        assertEquals("triangle", c.best());
        assertEquals(0, c.textNanos);
        // prompts and search need the text tower: the errors say so, and name the label bank
        SdkException e = expectError(SdkException.Kind.MODEL_FILE, "needs the text tower",
                () -> p.classify(px, CLASSES, CLASSES));
        assertTrue(e.getMessage(), e.getMessage().contains("label bank"));
        expectError(SdkException.Kind.MODEL_FILE, "text-to-image search needs the text tower",
                () -> p.search("a red circle", new ArrayList<>()));
        expectError(SdkException.Kind.MODEL_FILE, "needs the text tower", () -> p.encodeText("a red circle"));
        // the benchmark times the image tower only
        Pipeline.Latency l = p.benchmark(px, "a red circle", 1, 3);
        assertEquals(3, l.runs);
        assertTrue(Double.isNaN(l.textMedianMs) && Double.isNaN(l.textMinMs));
        assertTrue(l.imageMedianMs >= l.imageMinMs && l.imageMinMs >= 0);
    }

    @Test
    public void neitherTextTowerNorLabelBankIsAClearZeroShotError() {
        Manifest m = Manifest.parse(TestData.manifestText()
                .replace("\"label_bank\"", "\"no_label_bank\""), "m.json");
        Pipeline p = new Pipeline(m, null, new ImageOnlyBackend(new float[m.embedDim]));
        byte[] px = new byte[m.imageSize * m.imageSize * 3];
        for (Supplier<?> f : Arrays.<Supplier<?>>asList(() -> p.classify(px, CLASSES, CLASSES),
                () -> p.classify(px, (LabelBank) null))) {
            SdkException e = expectError(SdkException.Kind.MODEL_FILE, "zero-shot classification needs the text tower", f);
            assertTrue(e.getMessage(), e.getMessage().contains("--label-bank"));
        }
        // an image-tower-only manifest: the message says the export has neither
        String imageOnly = TestData.manifestText()
                .replaceAll("\"tower\":\\s*\"text\"", "\"tower\": \"image\"");
        Manifest mi = Manifest.parse(imageOnly, "m.json");
        assertFalse(mi.hasTextTower());
        assertTrue(Pipeline.noZeroShot(mi).getMessage(), Pipeline.noZeroShot(mi).getMessage().contains("has neither"));
    }

    @Test
    public void imageOnlyManifestsPickAnImagePrecision() {
        Manifest m = TestData.manifest();
        assertTrue(m.hasTextTower());
        for (String platform : new String[]{"tflite", "executorch"}) {
            assertTrue(m.imagePrecisions(platform).containsAll(m.precisions(platform)));
        }
        // drop every text artifact: no pairs, but the image precisions remain and a default is picked
        String t = TestData.manifestText()
                .replaceAll("\"tower\":\\s*\"text\"", "\"tower\": \"image\"");
        Manifest mi = Manifest.parse(t, "m.json");
        assertTrue(mi.precisions("executorch").isEmpty());
        assertFalse(mi.imagePrecisions("executorch").isEmpty());
        assertTrue(mi.imagePrecisions("executorch").contains(mi.defaultPrecision("executorch")));
    }

    // ------------------------------------------------------------------ golden replay

    private static Map<String, Object> goldenBank() {
        Object b = TestData.golden().get("label_bank");
        return b == null ? null : TestData.obj(b, "label_bank");
    }

    @Test
    public void goldenHasABankBlockExactlyWhenTheManifestHasABank() {
        Manifest m = TestData.manifest();
        Map<String, Object> gb = goldenBank();
        assertEquals("golden.json has a label_bank block iff the manifest has a label bank", m.labelBank != null, gb != null);
        if (gb != null) {
            assertEquals(m.labelBank.file, gb.get("file"));
            assertEquals(m.labelBank.sha256, gb.get("sha256"));
            Map<String, Object> results = TestData.obj(TestData.golden().get("results"), "results");
            assertEquals(results.keySet(), TestData.obj(gb.get("results"), "label_bank.results").keySet());
        }
    }

    @Test
    public void theExportsLabelBankReads() {
        Manifest m = TestData.manifest();
        assumeTrue("this golden folder's export has no label bank", m.labelBank != null);
        LabelBank bank = LabelBank.fromManifest(m, TestData.goldenDir());
        assertEquals(m.labelBank.classes, bank.size());
        assertEquals(m.embedDim, bank.embedDim);
        assertEquals(m.labelBank.templates, bank.templates);
        List<Object> classes = TestData.list(goldenBank(), "classes");
        assertEquals(classes, new ArrayList<Object>(bank.classes));
        for (int i = 0; i < bank.size(); i++) {
            double norm = Math.sqrt(Arrays.stream(bank.embedding(i)).map(v -> v * v).sum());
            assertEquals("class " + i + " is normalized", 1.0, norm, 1e-5);
        }
    }

    @Test
    public void scoringReplaysGoldenBankScores() {
        Manifest m = TestData.manifest();
        assumeTrue("this golden folder's export has no label bank", m.labelBank != null);
        LabelBank bank = LabelBank.fromManifest(m, TestData.goldenDir());
        Map<String, Object> results = TestData.obj(TestData.golden().get("results"), "results");
        Map<String, Object> bankResults = TestData.obj(goldenBank().get("results"), "label_bank.results");
        int nImages = TestData.list(TestData.golden(), "images").size();
        for (String name : results.keySet()) {
            double[][] img = Json.asDoubleMatrix(TestData.obj(results.get(name), name).get("image_embeddings"), name);
            Map<String, Object> want = TestData.obj(bankResults.get(name), "label_bank.results." + name);
            double[][] wantScores = Json.asDoubleMatrix(want.get("scores"), "scores");
            double[][] wantProbs = Json.asDoubleMatrix(want.get("probs"), "probs");
            int[][] wantRank = Json.asIntMatrix(want.get("ranking"), "ranking");
            assertEquals(nImages, wantScores.length);
            for (int i = 0; i < img.length; i++) {
                double[] s = bank.scores(img[i], m.logitScale);
                assertArrayEquals(name + " bank scores of image " + i, wantScores[i], s, 1e-6);
                assertArrayEquals(name + " bank probs of image " + i, wantProbs[i], Scoring.softmax(s), 1e-6);
                assertArrayEquals(name + " bank ranking of image " + i, wantRank[i], Scoring.ranking(s));
            }
        }
    }

    @Test
    public void pipelineReplaysGoldenBankFromPngFiles() {
        Manifest m = TestData.manifest();
        assumeTrue("this golden folder's export has no label bank", m.labelBank != null);
        LabelBank bank = LabelBank.fromManifest(m, TestData.goldenDir());
        Map<String, Object> bankResults = TestData.obj(goldenBank().get("results"), "label_bank.results");
        List<Object> images = TestData.list(TestData.golden(), "images");
        for (String block : bankResults.keySet()) {
            Map<String, Object> want = TestData.obj(bankResults.get(block), block);
            double[][] wantScores = Json.asDoubleMatrix(want.get("scores"), "scores");
            double[][] wantProbs = Json.asDoubleMatrix(want.get("probs"), "probs");
            int[][] wantRank = Json.asIntMatrix(want.get("ranking"), "ranking");
            PipelineTest.GoldenBackend backend = PipelineTest.backendFor(block);
            Pipeline image = new Pipeline(m, null, new Backend() { // the same runtime without its text tower
                public String name() { return block + " (image tower)"; }
                public float[] encodeImage(float[] nchw) { return backend.encodeImage(nchw); }
                public float[] encodeText(int[] ids) { throw new AssertionError("no text tower"); }
                @Override public boolean hasTextTower() { return false; }
                public void close() { }
            });
            for (int i = 0; i < images.size(); i++) {
                String file = (String) TestData.obj(images.get(i), "image").get("file");
                byte[] hwc = Preprocess.preprocessPng(TestData.bytes(new File(TestData.goldenDir(), file)), m.imageSize);
                Pipeline.Classification c = image.classify(hwc, bank);
                assertEquals(bank.classes, c.labels);
                assertArrayEquals(block + " bank probs of " + file, wantProbs[i], c.probs, 1e-4);
                PipelineTest.assertRankingMatches(block + " bank ranking of " + file, wantRank[i], c.ranking, wantScores[i]);
            }
            assertTrue(backend.calls >= images.size());
        }
    }
}
