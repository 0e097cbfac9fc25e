package com.mobilesdk.core;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The export's label bank ({@code mobile-sdk export --label-bank FILE}, {@code mobile_sdk/label_bank.py}):
 * the text embeddings of a fixed set of classes, made at export time from the class names and the
 * prompt templates, so an app classifies images zero-shot with the image tower alone (the text
 * tower may not ship at all: {@code --tower image}). The file, {@code label_bank.json}:
 *
 * <pre>
 * {"schema": "mobile-sdk.label_bank", "schema_version": 1, "classes": [...], "templates": [...],
 *  "embed_dim": D, "normalized": true, "embeddings": [[D floats] per class]}
 * </pre>
 *
 * <p>{@link #fromManifest} reads the file the manifest's {@code label_bank} entry names, checks it
 * against the entry's sha256 (as model files are checked), its schema, its class count and its
 * embedding size against the manifest and the model's embed_dim. {@link #scores} scores an image
 * as {@link Scoring} scores prompts: logit_scale * cosine, in float64.
 */
public final class LabelBank {
    public static final String SCHEMA = "mobile-sdk.label_bank";
    public static final int SCHEMA_VERSION = 1;
    private static final String HOW_TO_FIX = "bundle the label_bank.json of the same export as manifest.json "
            + "(`mobile-sdk export --label-bank CLASSES.txt` writes both)";

    /** The file's name in the export folder (the manifest's label_bank.file). */
    public final String file;
    /** Class names, in the order of the embeddings. */
    public final List<String> classes;
    /** The prompt templates each class embedding averages. */
    public final List<String> templates;
    public final int embedDim;
    /** One row of embed_dim values per class, exactly as the file holds them. */
    private final double[][] embeddings;

    private LabelBank(String file, List<String> classes, List<String> templates, int embedDim, double[][] embeddings) {
        this.file = file;
        this.classes = Collections.unmodifiableList(classes);
        this.templates = Collections.unmodifiableList(templates);
        this.embedDim = embedDim;
        this.embeddings = embeddings;
    }

    /** Number of classes. */
    public int size() {
        return classes.size();
    }

    /** The embedding of class {@code i} (a copy). */
    public double[] embedding(int i) {
        return embeddings[i].clone();
    }

    /** All class embeddings (a copy), one row per class. */
    public double[][] embeddings() {
        double[][] out = new double[embeddings.length][];
        for (int i = 0; i < out.length; i++) {
            out[i] = embeddings[i].clone();
        }
        return out;
    }

    /** logit_scale * cosine(image embedding, class embedding) for every class, in class order. */
    public double[] scores(double[] imageEmbedding, double logitScale) {
        if (imageEmbedding.length != embedDim) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "the image embedding has "
                    + imageEmbedding.length + " values, the label bank's embed_dim is " + embedDim);
        }
        double[] out = new double[embeddings.length];
        for (int j = 0; j < out.length; j++) {
            out[j] = Scoring.score(imageEmbedding, embeddings[j], logitScale);
        }
        return out;
    }

    public double[] scores(float[] imageEmbedding, double logitScale) {
        return scores(Scoring.toDouble(imageEmbedding), logitScale);
    }

    // ------------------------------------------------------------------ reading

    /**
     * The label bank the manifest names, read through {@code files} (an export folder, the APK's
     * assets, ...) and checked.
     *
     * @throws SdkException MANIFEST when the manifest has no label bank; MODEL_FILE when the file is
     *                      missing, fails its sha256, or does not match the manifest / the model
     */
    public static LabelBank fromManifest(Manifest manifest, Tokenizer.FileSource files) {
        Manifest.LabelBankSpec spec = require(manifest);
        byte[] data;
        try {
            data = files.read(spec.file);
        } catch (FileNotFoundException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "label bank " + spec.file + " is missing; copy it "
                    + "from the export folder (the manifest's label_bank names it)", e);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot read label bank " + spec.file + ": "
                    + e.getMessage(), e);
        }
        return parse(manifest, data);
    }

    /** {@link #fromManifest(Manifest, Tokenizer.FileSource)} with the file read from an export folder. */
    public static LabelBank fromManifest(Manifest manifest, File folder) {
        return fromManifest(manifest, name -> {
            File f = new File(folder, name);
            if (!f.isFile()) {
                throw new FileNotFoundException(f.getPath());
            }
            return Files.readAllBytes(f.toPath());
        });
    }

    /** The manifest's label bank entry; a clear MANIFEST error when the export has none. */
    public static Manifest.LabelBankSpec require(Manifest manifest) {
        if (manifest.labelBank == null) {
            throw new SdkException(SdkException.Kind.MANIFEST, "the export has no label bank (manifest.json has no "
                    + "label_bank entry); export one with `mobile-sdk export --label-bank CLASSES.txt` (one class "
                    + "name per line)");
        }
        return manifest.labelBank;
    }

    /**
     * The bytes of the manifest's label bank file, checked: sha256 against the manifest, then the
     * schema, the class count and embed_dim against the manifest and the model.
     */
    public static LabelBank parse(Manifest manifest, byte[] data) {
        Manifest.LabelBankSpec spec = require(manifest);
        String name = spec.file;
        String got = Manifest.sha256(data);
        if (!got.equalsIgnoreCase(spec.sha256)) {
            throw bad(name, "does not match its sha256 in the manifest (" + got + " != " + spec.sha256 + ")");
        }
        Map<String, Object> d;
        try {
            Object root = Json.parse(Io.decodeUtf8(data));
            if (!(root instanceof Map)) {
                throw bad(name, "is not a JSON object");
            }
            d = Json.asObject(root, name);
        } catch (CharacterCodingException e) {
            throw bad(name, "is not UTF-8 text");
        } catch (IllegalArgumentException e) {
            throw bad(name, "is not valid JSON: " + e.getMessage());
        }
        try {
            return fromJson(d, manifest, spec);
        } catch (IllegalArgumentException e) {
            throw bad(name, e.getMessage());
        }
    }

    private static LabelBank fromJson(Map<String, Object> d, Manifest manifest, Manifest.LabelBankSpec spec) {
        Object schema = d.get("schema");
        if (!SCHEMA.equals(schema)) {
            throw new IllegalArgumentException("schema is " + (schema == null ? "missing" : "'" + schema + "'")
                    + ", expected '" + SCHEMA + "'");
        }
        Object version = d.get("schema_version");
        if (!(version instanceof Long) || (Long) version != SCHEMA_VERSION) {
            throw new IllegalArgumentException("schema_version " + version + " is not supported (this app reads "
                    + SCHEMA_VERSION + "); re-export with a mobile-sdk that writes version " + SCHEMA_VERSION
                    + " or update the app");
        }
        List<Object> classJson = Json.asList(d.get("classes"), "classes");
        List<String> classes = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < classJson.size(); i++) {
            String c = Json.asString(classJson.get(i), "classes[" + i + "]");
            if (c.trim().isEmpty() || !seen.add(c)) {
                throw new IllegalArgumentException("classes[" + i + "] '" + c + "' is " + (c.trim().isEmpty() ? "empty"
                        : "named twice"));
            }
            classes.add(c);
        }
        if (classes.size() != spec.classes) {
            throw new IllegalArgumentException("has " + classes.size() + " classes, the manifest's label_bank says "
                    + spec.classes);
        }
        int dim = Json.asInt(d.get("embed_dim"), "embed_dim");
        if (dim != manifest.embedDim || dim != spec.embedDim) {
            throw new IllegalArgumentException("embed_dim " + dim + " differs from the model's embed_dim "
                    + manifest.embedDim + " (label_bank.embed_dim " + spec.embedDim + ")");
        }
        List<Object> rows = Json.asList(d.get("embeddings"), "embeddings");
        if (rows.size() != classes.size()) {
            throw new IllegalArgumentException("has " + rows.size() + " embeddings for " + classes.size()
                    + " classes (one row per class)");
        }
        double[][] emb = new double[rows.size()][];
        for (int i = 0; i < emb.length; i++) {
            emb[i] = Json.asDoubleArray(rows.get(i), "embeddings[" + i + "]");
            if (emb[i].length != dim) {
                throw new IllegalArgumentException("embeddings[" + i + "] has " + emb[i].length
                        + " values, embed_dim is " + dim);
            }
            for (double v : emb[i]) {
                if (!Double.isFinite(v)) {
                    throw new IllegalArgumentException("embeddings[" + i + "] has a non-finite value");
                }
            }
        }
        List<String> templates = new ArrayList<>();
        if (d.get("templates") != null) {
            List<Object> t = Json.asList(d.get("templates"), "templates");
            for (int i = 0; i < t.size(); i++) {
                templates.add(Json.asString(t.get(i), "templates[" + i + "]"));
            }
        }
        return new LabelBank(spec.file, classes, templates, dim, emb);
    }

    private static SdkException bad(String name, String what) {
        return new SdkException(SdkException.Kind.MODEL_FILE, "label bank " + name + " " + what + "; " + HOW_TO_FIX);
    }
}
