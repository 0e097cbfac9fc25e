package com.mobilesdk.core;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code manifest.json} as written by {@code mobile-sdk export} (schema "mobile-sdk-manifest",
 * version {@value #SCHEMA_VERSION}); the checks mirror {@code mobile_sdk/manifest.py}
 * {@code validate_manifest}. Everything the app needs comes from here: nothing is guessed from
 * file names.
 */
public final class Manifest {
    public static final String SCHEMA = "mobile-sdk-manifest";
    public static final int SCHEMA_VERSION = 1;
    public static final List<String> PLATFORMS = Collections.unmodifiableList(Arrays.asList("executorch", "tflite", "coreml"));
    public static final List<String> TOWERS = Collections.unmodifiableList(Arrays.asList("image", "text"));

    /** Tokenizer kinds a manifest may name ({@code mobile_sdk/manifest.py} validates the same). */
    public static final List<String> TOKENIZER_KINDS = Collections.unmodifiableList(Arrays.asList("word", "clip_bpe", "hf"));
    /** The kinds this app implements ({@link Tokenizer#fromManifest}); "hf" is refused there. */
    public static final List<String> APP_TOKENIZER_KINDS = Collections.unmodifiableList(Arrays.asList("word", "clip_bpe"));

    /** The tokenizer settings of the model. */
    public static final class TokenizerSpec {
        /** "word" (also when the manifest has no kind), "clip_bpe" or "hf". */
        public final String kind;
        /** The vocabulary file (kind word), else null. */
        public final String vocabFile;
        /** sha256 of the vocabulary file, or null when the manifest has none. */
        public final String vocabSha256;
        /** The gzip BPE merges file (kind clip_bpe), else null. */
        public final String mergesFile;
        /** sha256 of the merges file, or null when the manifest has none. */
        public final String mergesSha256;
        /** Vocabulary size, or -1 when the manifest has none. */
        public final int vocabSize;
        public final int contextLength;
        /** unkId is -1 for kinds without an unknown token (clip_bpe). */
        public final int padId, sotId, eotId, unkId;

        TokenizerSpec(String kind, String vocabFile, String vocabSha256, String mergesFile, String mergesSha256,
                      int vocabSize, int contextLength, int padId, int sotId, int eotId, int unkId) {
            this.kind = kind;
            this.vocabFile = vocabFile;
            this.vocabSha256 = vocabSha256;
            this.mergesFile = mergesFile;
            this.mergesSha256 = mergesSha256;
            this.vocabSize = vocabSize;
            this.contextLength = contextLength;
            this.padId = padId;
            this.sotId = sotId;
            this.eotId = eotId;
            this.unkId = unkId;
        }

        /** The files of the export folder this tokenizer reads (to bundle them with the app). */
        public List<String> files() {
            List<String> out = new ArrayList<>();
            for (String f : new String[] {vocabFile, mergesFile}) {
                if (f != null) {
                    out.add(f);
                }
            }
            return out;
        }
    }

    /**
     * How an app makes the image tower's input from a photo. The model's pixel normalization
     * (mean / std) is inside its graph: the app only resizes, to image_size x image_size, by
     * {@link #resize}; {@link Preprocess} implements "center_crop" (the exact integer recipe of
     * {@code mobile_sdk/preprocess.py}) and refuses other rules.
     */
    public static final class Preprocessing {
        public static final String CENTER_CROP = "center_crop";
        /** How exports before the "center_crop" value described the same recipe. */
        static final String LEGACY_CENTER_CROP = "EXIF transpose; alpha over white; center crop to the largest square";

        public final int imageSize;
        /** "center_crop", or the manifest's other rule ("squash", "pad", ...) that the app refuses. */
        public final String resize;
        /** The model's own interpolation ("bicubic", ...), or null; the app's resize is the exact area resize. */
        public final String interpolation;
        /** Per-channel mean / std of [0, 1] pixels (informational: folded into the graph), or null. */
        public final double[] mean, std;

        Preprocessing(int imageSize, String resize, String interpolation, double[] mean, double[] std) {
            this.imageSize = imageSize;
            this.resize = resize;
            this.interpolation = interpolation;
            this.mean = mean;
            this.std = std;
        }

        /**
         * @throws SdkException MANIFEST when the resize rule is not one this app implements
         */
        public void requireSupported() {
            if (!CENTER_CROP.equals(resize)) {
                throw new SdkException(SdkException.Kind.MANIFEST, "the model's preprocessing resize rule '" + resize
                        + "' is not implemented by this app (it implements '" + CENTER_CROP + "': center crop to the "
                        + "largest square, exact area resize to image_size); export a model whose manifest says "
                        + CENTER_CROP);
            }
        }

        /** The manifest's resize value as a rule: absent or the older description = center_crop. */
        static String rule(Object resize) {
            if (resize == null || (resize instanceof String && ((String) resize).startsWith(LEGACY_CENTER_CROP))) {
                return CENTER_CROP;
            }
            return resize instanceof String ? (String) resize : String.valueOf(resize);
        }
    }

    /** A zero-shot task: class labels and one prompt per label, in the same order. */
    public static final class Task {
        public final List<String> labels;
        public final List<String> prompts;

        Task(List<String> labels, List<String> prompts) {
            this.labels = Collections.unmodifiableList(labels);
            this.prompts = Collections.unmodifiableList(prompts);
        }
    }

    /**
     * The manifest's {@code label_bank} entry ({@code mobile-sdk export --label-bank FILE}): the
     * file of class embeddings that lets an app classify with the image tower alone, its sha256,
     * class count, embedding size and prompt templates. {@link LabelBank#fromManifest} reads and
     * checks the file.
     */
    public static final class LabelBankSpec {
        public final String file, sha256;
        /** Number of classes (rows of the file). */
        public final int classes;
        public final int embedDim;
        /** The prompt templates the class embeddings average ("a photo of a {}."); empty when not recorded. */
        public final List<String> templates;

        LabelBankSpec(String file, String sha256, int classes, int embedDim, List<String> templates) {
            this.file = file;
            this.sha256 = sha256;
            this.classes = classes;
            this.embedDim = embedDim;
            this.templates = Collections.unmodifiableList(templates);
        }
    }

    /** One exported model file: a tower of one platform at one precision. */
    public static final class Artifact {
        public final String platform, tower, precision, variant, file, sha256;
        public final long bytes;
        public final List<TensorSpec> inputs, outputs;
        /** The manifest's {@code default} field: this platform's default precision (false when absent). */
        public final boolean isDefault;

        Artifact(String platform, String tower, String precision, String variant, String file, String sha256,
                 long bytes, List<TensorSpec> inputs, List<TensorSpec> outputs, boolean isDefault) {
            this.isDefault = isDefault;
            this.platform = platform;
            this.tower = tower;
            this.precision = precision;
            this.variant = variant;
            this.file = file;
            this.sha256 = sha256;
            this.bytes = bytes;
            this.inputs = Collections.unmodifiableList(inputs);
            this.outputs = Collections.unmodifiableList(outputs);
        }

        @Override
        public String toString() {
            return platform + "/" + tower + "/" + precision + " (" + file + ")";
        }
    }

    public final int schemaVersion;
    public final String sdkVersion;
    public final String modelName;
    public final int embedDim;
    public final double logitScale;
    /** preprocessing.imageSize, for short. */
    public final int imageSize;
    public final Preprocessing preprocessing;
    public final TokenizerSpec tokenizer;
    /** Tasks in manifest order. */
    public final Map<String, Task> tasks;
    public final List<Artifact> artifacts;
    /** The golden-vector file name, or null. */
    public final String golden;
    /** The label bank entry, or null when the export has none. */
    public final LabelBankSpec labelBank;

    private Manifest(int schemaVersion, String sdkVersion, String modelName, int embedDim, double logitScale,
                     Preprocessing preprocessing, TokenizerSpec tokenizer, Map<String, Task> tasks,
                     List<Artifact> artifacts, String golden, LabelBankSpec labelBank) {
        this.schemaVersion = schemaVersion;
        this.sdkVersion = sdkVersion;
        this.modelName = modelName;
        this.embedDim = embedDim;
        this.logitScale = logitScale;
        this.imageSize = preprocessing.imageSize;
        this.preprocessing = preprocessing;
        this.tokenizer = tokenizer;
        this.tasks = Collections.unmodifiableMap(tasks);
        this.artifacts = Collections.unmodifiableList(artifacts);
        this.golden = golden;
        this.labelBank = labelBank;
    }

    // ------------------------------------------------------------------ reading

    /** Reads {@code path} (a manifest.json, or a folder holding one) and validates its structure. */
    public static Manifest load(File path) {
        File f = path.isDirectory() ? new File(path, "manifest.json") : path;
        if (!f.isFile()) {
            throw new SdkException(SdkException.Kind.MANIFEST,
                    "manifest not found: " + f + "; create it with `mobile-sdk export --out DIR` and bundle DIR");
        }
        try {
            return parse(new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8), f.toString());
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MANIFEST, "cannot read manifest " + f + ": " + e.getMessage(), e);
        }
    }

    /** Reads a manifest from a stream (an Android asset, say); {@code source} names it in errors. */
    public static Manifest read(InputStream in, String source) {
        try {
            return parse(new String(Io.readAll(in), StandardCharsets.UTF_8), source);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MANIFEST, "cannot read manifest " + source + ": " + e.getMessage(), e);
        }
    }

    /** Parses and validates manifest JSON text; {@code source} names it in errors. */
    public static Manifest parse(String text, String source) {
        Object root;
        try {
            root = Json.parse(text);
        } catch (IllegalArgumentException e) {
            throw new SdkException(SdkException.Kind.MANIFEST, "manifest " + source + " is not valid JSON: " + e.getMessage(), e);
        }
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new SdkException(SdkException.Kind.MANIFEST, "manifest " + source + ": " + e.getMessage(), e);
        }
    }

    private static Object need(Map<String, Object> d, String key, String where) {
        if (!d.containsKey(key)) {
            throw new IllegalArgumentException(where + " lacks '" + key + "'");
        }
        return d.get(key);
    }

    private static String str(Map<String, Object> d, String key, String where) {
        return Json.asString(need(d, key, where), where + "." + key);
    }

    private static int integer(Map<String, Object> d, String key, String where) {
        return Json.asInt(need(d, key, where), where + "." + key);
    }

    private static Map<String, Object> obj(Map<String, Object> d, String key, String where) {
        return Json.asObject(need(d, key, where), where + "." + key);
    }

    private static List<Object> list(Map<String, Object> d, String key, String where) {
        return Json.asList(need(d, key, where), where + "." + key);
    }

    private static List<String> strings(Map<String, Object> d, String key, String where) {
        List<String> out = new ArrayList<>();
        List<Object> l = list(d, key, where);
        for (int i = 0; i < l.size(); i++) {
            out.add(Json.asString(l.get(i), where + "." + key + "[" + i + "]"));
        }
        return out;
    }

    private static Manifest fromJson(Object root) {
        if (!(root instanceof Map)) {
            throw new IllegalArgumentException("not a JSON object");
        }
        Map<String, Object> d = Json.asObject(root, "manifest");
        Object schema = d.get("schema");
        if (!SCHEMA.equals(schema)) {
            throw new IllegalArgumentException("schema is " + (schema == null ? "missing" : "'" + schema + "'")
                    + ", expected '" + SCHEMA + "'; is this a manifest.json written by `mobile-sdk export`?");
        }
        Object v = need(d, "schema_version", "manifest");
        if (!(v instanceof Long)) {
            throw new IllegalArgumentException("manifest.schema_version must be an integer, got " + Json.typeName(v));
        }
        long version = (Long) v;
        Object sdk = d.get("sdk_version");
        String sdkVersion = sdk instanceof String ? (String) sdk : "";
        if (version != SCHEMA_VERSION) {
            throw new IllegalArgumentException("schema_version " + version + " is not supported (this app reads "
                    + SCHEMA_VERSION + "): it was written by mobile-sdk "
                    + (sdkVersion.isEmpty() ? "of an unknown version" : sdkVersion) + "; "
                    + (version > SCHEMA_VERSION ? "update the app, or re-export with a mobile-sdk that writes version "
                       + SCHEMA_VERSION : "re-export with a mobile-sdk that writes version " + SCHEMA_VERSION));
        }

        Map<String, Object> model = obj(d, "model", "manifest");
        int embedDim = integer(model, "embed_dim", "model");
        Object ls = need(model, "logit_scale", "model");
        double logitScale = Json.asDouble(ls, "model.logit_scale");
        if (!(logitScale > 0) || Double.isInfinite(logitScale)) {
            throw new IllegalArgumentException("model.logit_scale must be a positive finite number, got " + logitScale);
        }
        if (embedDim < 1) {
            throw new IllegalArgumentException("model.embed_dim must be >= 1, got " + embedDim);
        }
        Map<String, Object> pre = obj(model, "preprocessing", "model");
        int imageSize = integer(pre, "image_size", "model.preprocessing");
        if (imageSize < 1) {
            throw new IllegalArgumentException("model.preprocessing.image_size must be >= 1, got " + imageSize);
        }
        Preprocessing preprocessing = new Preprocessing(imageSize, Preprocessing.rule(pre.get("resize")),
                pre.get("interpolation") instanceof String ? (String) pre.get("interpolation") : null,
                triple(pre, "mean"), triple(pre, "std"));
        Map<String, Object> tok = obj(model, "tokenizer", "model");
        Object kindJson = tok.get("kind");
        String kind = kindJson == null ? "word" : Json.asString(kindJson, "model.tokenizer.kind");
        if (!TOKENIZER_KINDS.contains(kind)) {
            throw new IllegalArgumentException("model.tokenizer.kind '" + kind + "' is not one of " + TOKENIZER_KINDS);
        }
        boolean word = kind.equals("word"), bpe = kind.equals("clip_bpe");
        Object size = tok.get("vocab_size");
        TokenizerSpec ts = new TokenizerSpec(
                kind,
                word ? str(tok, "vocab_file", "model.tokenizer") : null,
                word ? optionalString(tok, "vocab_sha256") : null,
                bpe ? str(tok, "merges_file", "model.tokenizer") : null,
                bpe ? optionalString(tok, "merges_sha256") : null,
                size instanceof Long ? Json.asInt(size, "model.tokenizer.vocab_size") : -1,
                integer(tok, "context_length", "model.tokenizer"),
                integer(tok, "pad_id", "model.tokenizer"), integer(tok, "sot_id", "model.tokenizer"),
                integer(tok, "eot_id", "model.tokenizer"), word ? integer(tok, "unk_id", "model.tokenizer") : -1);
        if (kind.equals("hf")) {
            str(tok, "tokenizer_file", "model.tokenizer"); // what validate_manifest requires
        }
        for (String f : ts.files()) {
            if (!insideFolder(f)) {
                throw new IllegalArgumentException("model.tokenizer file must be a path inside the export folder, got '"
                        + f + "'");
            }
        }
        if (ts.contextLength < 2) {
            throw new IllegalArgumentException("model.tokenizer.context_length must be >= 2, got " + ts.contextLength);
        }
        Map<String, Object> tasksJson = obj(model, "tasks", "model");
        Map<String, Task> tasks = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : tasksJson.entrySet()) {
            String w = "tasks." + e.getKey();
            Map<String, Object> t = Json.asObject(e.getValue(), w);
            List<String> labels = strings(t, "labels", w);
            List<String> prompts = strings(t, "prompts", w);
            if (labels.size() != prompts.size() || labels.isEmpty()) {
                throw new IllegalArgumentException(w + " needs as many prompts as labels (>0)");
            }
            tasks.put(e.getKey(), new Task(labels, prompts));
        }
        Object name = model.get("name");

        List<Object> arts = list(d, "artifacts", "manifest");
        List<Artifact> artifacts = new ArrayList<>();
        for (int i = 0; i < arts.size(); i++) {
            String w = "artifacts[" + i + "]";
            Map<String, Object> a = Json.asObject(arts.get(i), w);
            String platform = str(a, "platform", w);
            if (!PLATFORMS.contains(platform)) {
                throw new IllegalArgumentException(w + ".platform '" + platform + "' not in " + PLATFORMS);
            }
            String tower = str(a, "tower", w);
            if (!TOWERS.contains(tower)) {
                throw new IllegalArgumentException(w + ".tower '" + tower + "' not in " + TOWERS);
            }
            String file = str(a, "file", w);
            if (!insideFolder(file)) {
                throw new IllegalArgumentException(w + ".file must be a path inside the export folder, got '" + file + "'");
            }
            long bytes = Json.asLong(need(a, "bytes", w), w + ".bytes");
            Object isDefault = a.get("default");
            if (isDefault != null && !(isDefault instanceof Boolean)) {
                throw new IllegalArgumentException(w + ".default must be true or false, got " + isDefault);
            }
            artifacts.add(new Artifact(platform, tower, str(a, "precision", w), str(a, "variant", w), file,
                    str(a, "sha256", w), bytes, specs(a, "inputs", w), specs(a, "outputs", w),
                    Boolean.TRUE.equals(isDefault)));
        }
        Object golden = d.get("golden");
        return new Manifest((int) version, sdkVersion, name instanceof String ? (String) name : "", embedDim,
                logitScale, preprocessing, ts, tasks, artifacts, golden instanceof String ? (String) golden : null,
                d.containsKey("label_bank") ? labelBank(obj(d, "label_bank", "manifest"), embedDim) : null);
    }

    /** The label_bank entry, checked as validate_manifest does, and against the model's embed_dim. */
    private static LabelBankSpec labelBank(Map<String, Object> b, int embedDim) {
        String file = str(b, "file", "label_bank");
        if (!insideFolder(file)) {
            throw new IllegalArgumentException("label_bank.file must be a path inside the export folder, got '" + file + "'");
        }
        int classes = integer(b, "classes", "label_bank");
        if (classes < 1) {
            throw new IllegalArgumentException("label_bank.classes must be >= 1, got " + classes);
        }
        int dim = integer(b, "embed_dim", "label_bank");
        if (dim != embedDim) {
            throw new IllegalArgumentException("label_bank.embed_dim " + dim + " differs from model.embed_dim "
                    + embedDim + "; the label bank comes from another model: re-export it with this one");
        }
        List<String> templates = b.get("templates") == null ? new ArrayList<>() : strings(b, "templates", "label_bank");
        return new LabelBankSpec(file, str(b, "sha256", "label_bank"), classes, dim, templates);
    }

    /** A relative path that stays inside the export folder. */
    private static boolean insideFolder(String file) {
        return !(file.isEmpty() || file.startsWith("/") || file.startsWith("\\")
                || ("/" + file.replace('\\', '/') + "/").contains("/../"));
    }

    private static String optionalString(Map<String, Object> d, String key) {
        Object v = d.get(key);
        return v instanceof String ? (String) v : null;
    }

    /** Three numbers (a per-channel mean / std), or null when absent or malformed (informational only). */
    private static double[] triple(Map<String, Object> d, String key) {
        if (!(d.get(key) instanceof List)) {
            return null;
        }
        List<?> l = (List<?>) d.get(key);
        if (l.size() != 3) {
            return null;
        }
        double[] out = new double[3];
        for (int i = 0; i < 3; i++) {
            if (!(l.get(i) instanceof Number)) {
                return null;
            }
            out[i] = ((Number) l.get(i)).doubleValue();
        }
        return out;
    }

    private static List<TensorSpec> specs(Map<String, Object> a, String key, String w) {
        List<TensorSpec> out = new ArrayList<>();
        List<Object> l = list(a, key, w);
        for (int j = 0; j < l.size(); j++) {
            String sw = w + "." + key + "[" + j + "]";
            Map<String, Object> s = Json.asObject(l.get(j), sw);
            List<Object> shapeJson = list(s, "shape", sw);
            int[] shape = new int[shapeJson.size()];
            for (int k = 0; k < shape.length; k++) {
                Object dim = shapeJson.get(k);
                if (!(dim instanceof Long) || (Long) dim <= 0 || (Long) dim > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(sw + ".shape must be positive ints, got " + shapeJson);
                }
                shape[k] = (int) (long) (Long) dim;
            }
            Object layout = s.get("layout");
            Object scale = s.get("scale");
            Object zp = s.get("zero_point");
            out.add(new TensorSpec(str(s, "name", sw), shape, str(s, "dtype", sw),
                    layout instanceof String ? (String) layout : "",
                    scale == null ? null : Json.asDouble(scale, sw + ".scale"),
                    zp == null ? null : Json.asInt(zp, sw + ".zero_point")));
        }
        return out;
    }

    // ------------------------------------------------------------------ queries

    /** The artifact of one platform, tower and precision, or null. */
    public Artifact find(String platform, String tower, String precision) {
        for (Artifact a : artifacts) {
            if (a.platform.equals(platform) && a.tower.equals(tower) && a.precision.equals(precision)) {
                return a;
            }
        }
        return null;
    }

    /** The precisions of {@code platform} that have both towers, in manifest order. */
    public List<String> precisions(String platform) {
        List<String> out = new ArrayList<>();
        for (Artifact a : artifacts) {
            if (a.platform.equals(platform) && !out.contains(a.precision)
                    && find(platform, "image", a.precision) != null && find(platform, "text", a.precision) != null) {
                out.add(a.precision);
            }
        }
        return out;
    }

    /**
     * The precisions of {@code platform} that have an image tower (with or without the text tower),
     * in manifest order: what an app can run when it classifies against a {@link LabelBank}.
     */
    public List<String> imagePrecisions(String platform) {
        List<String> out = new ArrayList<>();
        for (Artifact a : artifacts) {
            if (a.platform.equals(platform) && a.tower.equals("image") && !out.contains(a.precision)) {
                out.add(a.precision);
            }
        }
        return out;
    }

    /** Whether any artifact is a text tower (an export with {@code --tower image} has none). */
    public boolean hasTextTower() {
        for (Artifact a : artifacts) {
            if (a.tower.equals("text")) {
                return true;
            }
        }
        return false;
    }

    /**
     * The precision an app uses by default on {@code platform}: the one the manifest marks
     * {@code "default": true}; for a manifest without the mark, for TFLite "int8_cpu", for
     * ExecuTorch the SDK's default "int8_dynamic", then "int8" (static); else the first precision
     * with both towers. When the platform has no image + text pair (an image-tower-only export), the
     * same rules pick among the precisions with an image tower.
     *
     * @throws SdkException (MODEL_FILE) when the platform has no image tower
     */
    public String defaultPrecision(String platform) {
        List<String> ps = precisions(platform);
        if (ps.isEmpty()) {
            ps = imagePrecisions(platform);
        }
        if (ps.isEmpty()) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "the manifest lists no " + platform
                    + " artifacts with an image tower; export them with `mobile-sdk export`");
        }
        for (String p : ps) {  // the manifest's own mark
            Artifact a = find(platform, "image", p);
            if (a != null && a.isDefault) {
                return p;
            }
        }
        if (platform.equals("tflite")) {  // a manifest without the mark: the SDK's rule
            if (ps.contains("int8_cpu")) {
                return "int8_cpu";
            }
        }
        if (platform.equals("executorch") && ps.contains("int8_dynamic")) {
            return "int8_dynamic";
        }
        if (ps.contains("int8")) {
            return "int8";
        }
        return ps.get(0);
    }

    /** The zero-shot task the demo shows first (zeroshot_color when present). */
    public String defaultTask() {
        if (tasks.isEmpty()) {
            throw new SdkException(SdkException.Kind.MANIFEST, "the manifest has no zero-shot tasks");
        }
        return tasks.containsKey("zeroshot_color") ? "zeroshot_color" : tasks.keySet().iterator().next();
    }

    /**
     * The file of {@code a} inside {@code folder}; a clear MODEL_FILE error when it is missing.
     * With {@code checkSha256} the file's sha256 must match the manifest.
     */
    public static File resolve(File folder, Artifact a, boolean checkSha256) {
        File f = new File(folder, a.file);
        if (!f.exists()) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "model file " + a.file + " (" + a.platform + " "
                    + a.tower + " " + a.precision + ") is missing from " + folder
                    + "; re-run `mobile-sdk export` and copy the whole export folder (./gradlew copyExportedModels)");
        }
        if (checkSha256) {
            String got = sha256(f);
            if (!got.equals(a.sha256)) {
                throw new SdkException(SdkException.Kind.MODEL_FILE, "model file " + f + " does not match its sha256 in"
                        + " the manifest (" + got + " != " + a.sha256 + "); re-export or restore it");
            }
        }
        return f;
    }

    /** Checks every artifact file exists under {@code folder} (and with {@code checkSha256}, its hash). */
    public void checkFiles(File folder, boolean checkSha256) {
        for (Artifact a : artifacts) {
            resolve(folder, a, checkSha256);
        }
    }

    /** sha256 hex of a file, or of a folder as {@code mobile_sdk.manifest.sha256_file} hashes it. */
    public static String sha256(File f) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            if (f.isFile()) {
                md.update(Files.readAllBytes(f.toPath()));
            } else {
                List<String> rel = new ArrayList<>();
                collect(f, "", rel);
                Collections.sort(rel); // Python sorts the Path objects: same order for plain names
                for (String r : rel) {
                    md.update(r.getBytes(StandardCharsets.UTF_8));
                    md.update(Files.readAllBytes(new File(f, r).toPath()));
                }
            }
            return hex(md.digest());
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot read " + f + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** sha256 hex of bytes. */
    public static String sha256(byte[] data) {
        try {
            return hex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void collect(File dir, String prefix, List<String> out) {
        File[] kids = dir.listFiles();
        if (kids == null) {
            return;
        }
        for (File k : kids) {
            String r = prefix.isEmpty() ? k.getName() : prefix + "/" + k.getName();
            if (k.isDirectory()) {
                collect(k, r, out);
            } else if (k.isFile()) {
                out.add(r);
            }
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder(b.length * 2);
        for (byte x : b) {
            s.append(Character.forDigit((x >> 4) & 15, 16)).append(Character.forDigit(x & 15, 16));
        }
        return s.toString();
    }
}
