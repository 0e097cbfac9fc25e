package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import org.junit.Test;

/**
 * From the embeddings of every results block of golden.json (eager and each artifact pair), the
 * scores, softmax and rankings of the apps equal Python's: zero-shot scores / probs within 1e-6,
 * zero-shot and search rankings exactly.
 */
public class ScoringTest {
    @Test
    public void everyResultsBlockReplaysExactly() {
        Map<String, Object> golden = TestData.golden();
        Manifest m = TestData.manifest();
        double logitScale = Json.asDouble(golden.get("logit_scale"), "logit_scale");
        assertEquals(m.logitScale, logitScale, 0.0);
        Map<String, Object> results = TestData.obj(golden.get("results"), "results");
        assertTrue("golden has the eager block", results.containsKey("eager"));
        int nImages = TestData.list(golden, "images").size();
        int nTexts = TestData.list(golden, "texts").size();
        for (Map.Entry<String, Object> e : results.entrySet()) {
            String name = e.getKey();
            Map<String, Object> r = TestData.obj(e.getValue(), name);
            double[][] img = Json.asDoubleMatrix(r.get("image_embeddings"), name + ".image_embeddings");
            double[][] txt = Json.asDoubleMatrix(r.get("text_embeddings"), name + ".text_embeddings");
            double[][] prm = Json.asDoubleMatrix(r.get("prompt_embeddings"), name + ".prompt_embeddings");
            assertEquals(nImages, img.length);
            assertEquals(nTexts, txt.length);
            assertEquals(m.embedDim, img[0].length);

            double[][] zs = Scoring.scores(img, prm, logitScale);
            double[][] wantScores = Json.asDoubleMatrix(r.get("zeroshot_scores"), "zeroshot_scores");
            double[][] wantProbs = Json.asDoubleMatrix(r.get("zeroshot_probs"), "zeroshot_probs");
            int[][] wantRank = Json.asIntMatrix(r.get("zeroshot_ranking"), "zeroshot_ranking");
            for (int i = 0; i < img.length; i++) {
                assertArrayEquals(name + " zero-shot scores of image " + i, wantScores[i], zs[i], 1e-6);
                assertArrayEquals(name + " zero-shot probs of image " + i, wantProbs[i], Scoring.softmax(zs[i]), 1e-6);
                assertArrayEquals(name + " zero-shot ranking of image " + i, wantRank[i], Scoring.ranking(zs[i]));
            }
            double[][] search = Scoring.scores(txt, img, logitScale); // (texts, images) = scores(img, txt).T
            int[][] wantSearch = Json.asIntMatrix(r.get("search_ranking"), "search_ranking");
            assertEquals(nTexts, wantSearch.length);
            for (int t = 0; t < txt.length; t++) {
                assertArrayEquals(name + " search ranking of text " + t, wantSearch[t], Scoring.ranking(search[t]));
            }
        }
    }

    @Test
    public void goldenCoversEveryNonCoreMlArtifactPair() {
        Manifest m = TestData.manifest();
        Map<String, Object> results = TestData.obj(TestData.golden().get("results"), "results");
        for (String platform : new String[]{"tflite", "executorch"}) {
            for (String p : m.precisions(platform)) {
                assertTrue("golden has results for " + platform + "/" + p, results.containsKey(platform + "/" + p));
            }
        }
    }

    @Test
    public void rankingIsStableDescending() {
        assertArrayEquals(new int[]{1, 3, 0, 2}, Scoring.ranking(new double[]{0.5, 2.0, 0.5, 2.0}));
        assertArrayEquals(new int[]{1, 0, 2}, Scoring.ranking(new double[]{0.0, 1.0, Double.NaN}));
        assertArrayEquals(new int[]{0, 1}, Scoring.ranking(new double[]{-0.0, 0.0}));
        assertArrayEquals(new int[]{}, Scoring.ranking(new double[]{}));
    }

    @Test
    public void softmaxAndCosine() {
        double[] p = Scoring.softmax(new double[]{1000, 1000, 999});
        assertEquals(1.0, p[0] + p[1] + p[2], 1e-15);
        assertEquals(p[0], p[1], 0);
        assertEquals(100.0, Scoring.score(new double[]{3, 4}, new double[]{6, 8}, 100.0), 1e-12);
        assertEquals(0.0, Scoring.score(new double[]{0, 0}, new double[]{6, 8}, 100.0), 0);
        assertEquals(-50.0, Scoring.score(new double[]{1, 0}, new double[]{-2, 0}, 50.0), 1e-12);
    }
}
