package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The app's flow end to end with a stand-in backend that answers with the golden embeddings of
 * one results block (as float32, like a real runtime): PNG file -> decode -> preprocess -> backend
 * -> scoring gives golden's rankings and probabilities.
 */
public class PipelineTest {
    /** Looks inputs up: pixels by value, ids by value. */
    static final class GoldenBackend implements Backend {
        final Map<String, float[]> images = new HashMap<>(), texts = new HashMap<>();
        final String name;
        int calls;

        GoldenBackend(String name) {
            this.name = name;
        }

        static float[] f32(double[] v) {
            float[] f = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                f[i] = (float) v[i];
            }
            return f;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public float[] encodeImage(float[] nchw) {
            calls++;
            float[] e = images.get(Arrays.toString(nchw));
            if (e == null) {
                throw new SdkException(SdkException.Kind.BACKEND, "unexpected pixels (preprocessing differs from Python's)");
            }
            return e.clone();
        }

        @Override
        public float[] encodeText(int[] ids) {
            calls++;
            float[] e = texts.get(Arrays.toString(ids));
            if (e == null) {
                throw new SdkException(SdkException.Kind.BACKEND, "unexpected ids " + Arrays.toString(ids));
            }
            return e.clone();
        }

        @Override
        public void close() {
        }
    }

    static GoldenBackend backendFor(String block) {
        Map<String, Object> g = TestData.golden();
        Map<String, Object> r = TestData.obj(TestData.obj(g.get("results"), "results").get(block), block);
        Manifest m = TestData.manifest();
        GoldenBackend b = new GoldenBackend(block);
        List<Object> images = TestData.list(g, "images");
        double[][] img = Json.asDoubleMatrix(r.get("image_embeddings"), "image_embeddings");
        for (int i = 0; i < images.size(); i++) {
            byte[] px = TestData.toBytes(Json.asIntArray(TestData.obj(images.get(i), "image").get("pixels"), "pixels"));
            b.images.put(Arrays.toString(Preprocess.toNchw(px, m.imageSize)), GoldenBackend.f32(img[i]));
        }
        List<Object> texts = TestData.list(g, "texts");
        double[][] txt = Json.asDoubleMatrix(r.get("text_embeddings"), "text_embeddings");
        for (int i = 0; i < texts.size(); i++) {
            b.texts.put(Arrays.toString(Json.asIntArray(TestData.obj(texts.get(i), "text").get("ids"), "ids")), GoldenBackend.f32(txt[i]));
        }
        Map<String, Object> p = TestData.obj(g.get("prompts"), "prompts");
        int[][] pids = Json.asIntMatrix(p.get("ids"), "ids");
        double[][] prm = Json.asDoubleMatrix(r.get("prompt_embeddings"), "prompt_embeddings");
        for (int i = 0; i < pids.length; i++) {
            b.texts.put(Arrays.toString(pids[i]), GoldenBackend.f32(prm[i]));
        }
        return b;
    }

    /** Rankings equal, except that entries whose golden scores are closer than float32 can resolve may swap. */
    static void assertRankingMatches(String what, int[] want, int[] got, double[] scores) {
        for (int k = 0; k < want.length; k++) {
            if (want[k] != got[k]) {
                double gap = Math.abs(scores[want[k]] - scores[got[k]]);
                assertTrue(what + ": ranking " + Arrays.toString(got) + " != " + Arrays.toString(want) + " (gap " + gap + ")",
                        gap < 1e-4);
            }
        }
    }

    @Test
    public void zeroShotAndSearchFromFilesMatchGolden() {
        Map<String, Object> g = TestData.golden();
        Manifest m = TestData.manifest();
        Tokenizer tok = TestData.tokenizer();
        Map<String, Object> results = TestData.obj(g.get("results"), "results");
        Map<String, Object> prompts = TestData.obj(g.get("prompts"), "prompts");
        Manifest.Task task = m.tasks.get((String) prompts.get("task"));
        List<Object> images = TestData.list(g, "images");
        List<Object> texts = TestData.list(g, "texts");
        for (String block : results.keySet()) {
            Map<String, Object> r = TestData.obj(results.get(block), block);
            GoldenBackend backend = backendFor(block);
            Pipeline pipe = new Pipeline(m, tok, backend);
            double[][] wantProbs = Json.asDoubleMatrix(r.get("zeroshot_probs"), "zeroshot_probs");
            double[][] wantScores = Json.asDoubleMatrix(r.get("zeroshot_scores"), "zeroshot_scores");
            int[][] wantRank = Json.asIntMatrix(r.get("zeroshot_ranking"), "zeroshot_ranking");
            List<float[]> gallery = new ArrayList<>();
            for (int i = 0; i < images.size(); i++) {
                String file = (String) TestData.obj(images.get(i), "image").get("file");
                byte[] hwc = Preprocess.preprocessPng(TestData.bytes(new File(TestData.goldenDir(), file)), m.imageSize);
                Pipeline.Classification c = pipe.classify(hwc, task.labels, task.prompts);
                assertArrayEquals(block + " probs of " + file, wantProbs[i], c.probs, 1e-4);
                assertRankingMatches(block + " zero-shot " + file, wantRank[i], c.ranking, wantScores[i]);
                gallery.add(pipe.encodeImage(hwc).embedding);
            }
            int[][] wantSearch = Json.asIntMatrix(r.get("search_ranking"), "search_ranking");
            for (int t = 0; t < texts.size(); t++) {
                String text = (String) TestData.obj(texts.get(t), "text").get("text");
                Pipeline.Search s = pipe.search(text, gallery);
                assertRankingMatches(block + " search '" + text + "'", wantSearch[t], s.ranking, s.scores);
            }
            assertTrue(backend.calls > 0);
        }
    }

    @Test
    public void wrongBackendOutputsAreClearErrors() {
        Manifest m = TestData.manifest();
        Tokenizer tok = TestData.tokenizer();
        Backend shortOut = new Backend() {
            public String name() { return "short"; }
            public float[] encodeImage(float[] x) { return new float[3]; }
            public float[] encodeText(int[] ids) { float[] e = new float[m.embedDim]; e[0] = Float.NaN; return e; }
            public void close() { }
        };
        Pipeline p = new Pipeline(m, tok, shortOut);
        try {
            p.encodeImage(new byte[m.imageSize * m.imageSize * 3]);
            fail();
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.BACKEND, e.kind());
            assertTrue(e.getMessage(), e.getMessage().contains("embed_dim " + m.embedDim));
        }
        try {
            p.encodeText("a red circle");
            fail();
        } catch (SdkException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("non-finite"));
        }
    }

    @Test
    public void benchmarkTimesBothTowers() {
        Manifest m = TestData.manifest();
        GoldenBackend b = backendFor("eager");
        Pipeline p = new Pipeline(m, TestData.tokenizer(), b);
        Object first = TestData.list(TestData.golden(), "images").get(0);
        byte[] px = TestData.toBytes(Json.asIntArray(TestData.obj(first, "image").get("pixels"), "pixels"));
        String text = (String) TestData.obj(TestData.list(TestData.golden(), "texts").get(0), "text").get("text");
        Pipeline.Latency l = p.benchmark(px, text, 2, 5);
        assertEquals(5, l.runs);
        assertEquals(14, b.calls);
        assertTrue(l.imageMedianMs >= l.imageMinMs && l.imageMinMs >= 0);
        assertTrue(l.textMedianMs >= l.textMinMs && l.textMinMs >= 0);
    }
}
