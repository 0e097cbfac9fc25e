package com.mobilesdk.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What the demo screens do, independent of Android: pixels / text -> embeddings through a
 * {@link Backend}, then zero-shot classification (against prompts the text tower embeds, or against
 * the export's {@link LabelBank}) and text-to-image search with the scoring of {@link Scoring}.
 * Every embedding is checked against the manifest's embed_dim. Without a text tower (an
 * image-tower-only export, or no tokenizer) only the label bank classifies.
 */
public final class Pipeline {
    public final Manifest manifest;
    /** The manifest's tokenizer, or null when the app runs the image tower only. */
    public final Tokenizer tokenizer;
    private final Backend backend;

    /**
     * @param tokenizer the manifest's tokenizer, or null for the image tower alone (an export
     *                  without a text tower: classification goes through a {@link LabelBank})
     * @throws SdkException TEXT when the tokenizer is not the manifest's, MANIFEST when the
     *                      manifest's preprocessing rule is not one this app implements
     */
    public Pipeline(Manifest manifest, Tokenizer tokenizer, Backend backend) {
        if (tokenizer != null && !tokenizer.kind().equals(manifest.tokenizer.kind)) {
            throw new SdkException(SdkException.Kind.TEXT, "tokenizer kind " + tokenizer.kind()
                    + " differs from the manifest's " + manifest.tokenizer.kind);
        }
        if (tokenizer != null && tokenizer.contextLength() != manifest.tokenizer.contextLength) {
            throw new SdkException(SdkException.Kind.TEXT, "tokenizer context length " + tokenizer.contextLength()
                    + " differs from the manifest's " + manifest.tokenizer.contextLength);
        }
        manifest.preprocessing.requireSupported();
        this.manifest = manifest;
        this.tokenizer = tokenizer;
        this.backend = backend;
    }

    public Backend backend() {
        return backend;
    }

    /** Whether text can be embedded: a tokenizer and a backend with a text tower. */
    public boolean hasTextTower() {
        return tokenizer != null && backend.hasTextTower();
    }

    /**
     * The error for prompts or a search query when there is no text tower to embed them; it names
     * the label bank when the export has one.
     */
    public SdkException noTextTower(String what) {
        return new SdkException(SdkException.Kind.MODEL_FILE, what + " needs the text tower, and "
                + (backend == null ? "this backend" : backend.name()) + " has none (the export ships "
                + (manifest.hasTextTower() ? "no text tower at this precision" : "the image tower only") + ")"
                + (manifest.labelBank != null ? "; classify against the export's label bank instead"
                : "; re-export with both towers"));
    }

    /**
     * The error when zero-shot classification has nothing to compare an image with: the export
     * has no text tower (to embed prompts) and no label bank (class embeddings made at export).
     */
    public static SdkException noZeroShot(Manifest manifest) {
        return new SdkException(SdkException.Kind.MODEL_FILE, "zero-shot classification needs the text tower (to "
                + "embed the prompts) or a label bank (class embeddings made at export), and this export has "
                + (manifest.hasTextTower() ? "no label bank and no text tower at this precision" : "neither")
                + ": re-export with both towers (`mobile-sdk export` without `--tower image`), or add "
                + "`--label-bank CLASSES.txt` (one class name per line) to classify with the image tower alone");
    }

    /** One embedding and how long the backend took. */
    public static final class Timed {
        public final float[] embedding;
        public final long nanos;

        Timed(float[] embedding, long nanos) {
            this.embedding = embedding;
            this.nanos = nanos;
        }
    }

    /** An image (decoded) -> uint8 HWC pixels by the manifest's preprocessing spec. */
    public byte[] preprocess(RawImage image) {
        return Preprocess.preprocess(image, manifest.preprocessing);
    }

    /** Preprocessed uint8 HWC pixels (image_size x image_size x 3) -> image embedding. */
    public Timed encodeImage(byte[] hwc) {
        float[] x = Preprocess.toNchw(hwc, manifest.imageSize);
        long t0 = System.nanoTime();
        float[] e = backend.encodeImage(x);
        long dt = System.nanoTime() - t0;
        return new Timed(check(e, "image"), dt);
    }

    /** Text -> text embedding; a clear MODEL_FILE error without a text tower ({@link #hasTextTower}). */
    public Timed encodeText(String text) {
        if (!hasTextTower()) {
            throw noTextTower("embedding text");
        }
        int[] ids = tokenizer.encode(text);
        long t0 = System.nanoTime();
        float[] e = backend.encodeText(ids);
        long dt = System.nanoTime() - t0;
        return new Timed(check(e, "text"), dt);
    }

    private float[] check(float[] e, String tower) {
        if (e == null || e.length != manifest.embedDim) {
            throw new SdkException(SdkException.Kind.BACKEND, backend.name() + ": the " + tower + " tower gave "
                    + (e == null ? "no output" : e.length + " values") + ", the manifest says embed_dim "
                    + manifest.embedDim);
        }
        for (float v : e) {
            if (!Float.isFinite(v)) {
                throw new SdkException(SdkException.Kind.BACKEND, backend.name() + ": the " + tower
                        + " tower gave a non-finite embedding");
            }
        }
        return e;
    }

    /** A zero-shot result: per label score, probability, the ranking and the time spent. */
    public static final class Classification {
        public final List<String> labels;
        public final double[] scores, probs;
        public final int[] ranking;
        public final long imageNanos, textNanos;

        Classification(List<String> labels, double[] scores, int[] ranking, long imageNanos, long textNanos) {
            this.labels = labels;
            this.scores = scores;
            this.probs = Scoring.softmax(scores);
            this.ranking = ranking;
            this.imageNanos = imageNanos;
            this.textNanos = textNanos;
        }

        public String best() {
            return labels.get(ranking[0]);
        }
    }

    /** Scores of an image embedding against prompt embeddings (already computed). */
    public Classification classify(float[] imageEmbedding, List<String> labels, List<float[]> promptEmbeddings,
                                   long imageNanos, long textNanos) {
        if (labels.size() != promptEmbeddings.size() || labels.isEmpty()) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "need one prompt embedding per label (>0)");
        }
        double[] img = Scoring.toDouble(imageEmbedding);
        double[] scores = new double[labels.size()];
        for (int j = 0; j < scores.length; j++) {
            scores[j] = Scoring.score(img, Scoring.toDouble(promptEmbeddings.get(j)), manifest.logitScale);
        }
        return new Classification(new ArrayList<>(labels), scores, Scoring.ranking(scores), imageNanos, textNanos);
    }

    /** Zero-shot classification of preprocessed pixels against prompts (labels shown, prompts encoded). */
    public Classification classify(byte[] hwc, List<String> labels, List<String> prompts) {
        if (labels.size() != prompts.size() || labels.isEmpty()) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "need one prompt per label (>0)");
        }
        if (!hasTextTower()) {
            throw manifest.labelBank == null ? noZeroShot(manifest) : noTextTower("classifying with your own prompts");
        }
        Timed img = encodeImage(hwc);
        List<float[]> pe = new ArrayList<>();
        long textNanos = 0;
        for (String p : prompts) {
            Timed t = encodeText(p);
            pe.add(t.embedding);
            textNanos += t.nanos;
        }
        return classify(img.embedding, labels, pe, img.nanos, textNanos);
    }

    /**
     * Zero-shot classification of an image embedding against the label bank's classes: scores,
     * softmax and ranking exactly as for prompts ({@link #classify(float[], List, List, long, long)}).
     */
    public Classification classify(float[] imageEmbedding, LabelBank bank, long imageNanos) {
        if (bank == null) {
            throw noZeroShotWithoutBank();
        }
        if (bank.embedDim != manifest.embedDim) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "the label bank's embed_dim " + bank.embedDim
                    + " differs from the model's " + manifest.embedDim);
        }
        double[] scores = bank.scores(imageEmbedding, manifest.logitScale);
        return new Classification(bank.classes, scores, Scoring.ranking(scores), imageNanos, 0);
    }

    /** Zero-shot classification of preprocessed pixels against the label bank (the image tower only). */
    public Classification classify(byte[] hwc, LabelBank bank) {
        if (bank == null) {
            throw noZeroShotWithoutBank();
        }
        Timed img = encodeImage(hwc);
        return classify(img.embedding, bank, img.nanos);
    }

    private SdkException noZeroShotWithoutBank() {
        return hasTextTower()
                ? new SdkException(SdkException.Kind.INVALID_ARGUMENT, "no label bank given; classify with prompts")
                : noZeroShot(manifest);
    }

    /** A text-to-image search result: one score per gallery image and the ranking. */
    public static final class Search {
        public final double[] scores;
        public final int[] ranking;
        public final long textNanos;

        Search(double[] scores, long textNanos) {
            this.scores = scores;
            this.ranking = Scoring.ranking(scores);
            this.textNanos = textNanos;
        }
    }

    /** Ranks precomputed gallery embeddings for a text embedding. */
    public Search search(float[] textEmbedding, List<float[]> gallery, long textNanos) {
        double[] q = Scoring.toDouble(textEmbedding);
        double[] scores = new double[gallery.size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = Scoring.score(Scoring.toDouble(gallery.get(i)), q, manifest.logitScale);
        }
        return new Search(scores, textNanos);
    }

    public Search search(String query, List<float[]> gallery) {
        if (!hasTextTower()) {
            throw noTextTower("text-to-image search");
        }
        Timed t = encodeText(query);
        return search(t.embedding, gallery, t.nanos);
    }

    /** Latency of each tower over repeated runs (after warm-up), in milliseconds; text NaN without a text tower. */
    public static final class Latency {
        public final double imageMedianMs, imageMinMs, textMedianMs, textMinMs;
        public final int runs;

        Latency(long[] image, long[] text) {
            this.runs = image.length;
            this.imageMedianMs = median(image) / 1e6;
            this.imageMinMs = min(image) / 1e6;
            this.textMedianMs = text.length == 0 ? Double.NaN : median(text) / 1e6;
            this.textMinMs = text.length == 0 ? Double.NaN : min(text) / 1e6;
        }

        private static double median(long[] v) {
            long[] s = v.clone();
            Arrays.sort(s);
            int n = s.length;
            return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
        }

        private static double min(long[] v) {
            return Arrays.stream(v).min().orElse(0);
        }
    }

    /**
     * Runs each tower {@code warmup} times untimed, then {@code runs} times timed; without a text
     * tower ({@link #hasTextTower}) only the image tower.
     */
    public Latency benchmark(byte[] hwc, String text, int warmup, int runs) {
        if (runs < 1) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "runs must be >= 1");
        }
        boolean withText = hasTextTower();
        for (int i = 0; i < warmup; i++) {
            encodeImage(hwc);
            if (withText) {
                encodeText(text);
            }
        }
        long[] image = new long[runs], txt = new long[withText ? runs : 0];
        for (int i = 0; i < runs; i++) {
            image[i] = encodeImage(hwc).nanos;
            if (withText) {
                txt[i] = encodeText(text).nanos;
            }
        }
        return new Latency(image, txt);
    }
}
