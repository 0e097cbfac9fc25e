package com.mobilesdk.demo;

import android.content.Context;
import android.content.res.AssetManager;
import com.mobilesdk.core.Io;
import com.mobilesdk.core.LabelBank;
import com.mobilesdk.core.Manifest;
import com.mobilesdk.core.SdkException;
import com.mobilesdk.core.Tokenizer;
import java.io.File;
import java.io.FileNotFoundException;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The exported model as bundled in the APK's assets under {@value #ASSET_DIR}/ (by the Gradle
 * task copyExportedModels): manifest.json, the tokenizer's files (vocab.txt or the BPE merges
 * file), the label bank (label_bank.json, when the export has one), the artifacts, and
 * golden/*.png (the search gallery). Model files are copied once to the app's files folder, because both runtimes
 * load from a file path; each copy is checked against the manifest's sha256.
 */
public final class ModelStore {
    public static final String ASSET_DIR = "models";
    private static final String HOW_TO_BUNDLE = "build the app with `./gradlew copyExportedModels "
            + "-PexportDir=<folder written by mobile-sdk export>` (see android_demo/README.md)";

    private final Context context;
    private final AssetManager assets;

    public ModelStore(Context context) {
        this.context = context.getApplicationContext();
        this.assets = this.context.getAssets();
    }

    /** manifest.json from the assets; MANIFEST errors for a missing, malformed or unknown-version file. */
    public Manifest loadManifest() {
        InputStream in;
        try {
            in = assets.open(ASSET_DIR + "/manifest.json");
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MANIFEST,
                    "manifest not found: the app has no assets/" + ASSET_DIR + "/manifest.json; " + HOW_TO_BUNDLE, e);
        }
        try (InputStream s = in) {
            return Manifest.read(s, "assets/" + ASSET_DIR + "/manifest.json");
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MANIFEST, "cannot read manifest.json: " + e.getMessage(), e);
        }
    }

    /**
     * The tokenizer the manifest names (word vocabulary or CLIP BPE merges, each checked against
     * the manifest), through the core's one factory; a clear error for a kind the app lacks.
     */
    public Tokenizer loadTokenizer(Manifest manifest) {
        return Tokenizer.fromManifest(manifest, name -> {
            try (InputStream in = assets.open(ASSET_DIR + "/" + name)) {
                return Io.readAll(in);
            } catch (FileNotFoundException e) {
                throw new FileNotFoundException(name + " is not in the app's assets; " + HOW_TO_BUNDLE);
            }
        });
    }

    /**
     * The export's label bank (the manifest's label_bank file), checked against the manifest's
     * sha256, class count and the model's embed_dim by the core; MANIFEST error when the export
     * has none, MODEL_FILE when the APK lacks the file or it does not match.
     */
    public LabelBank loadLabelBank(Manifest manifest) {
        return LabelBank.fromManifest(manifest, name -> {
            try (InputStream in = assets.open(ASSET_DIR + "/" + name)) {
                return Io.readAll(in);
            } catch (FileNotFoundException e) {
                throw new FileNotFoundException(name + " is not in the app's assets; " + HOW_TO_BUNDLE);
            }
        });
    }

    /**
     * The artifact as a file the runtimes can open; MODEL_FILE error when the APK lacks it or
     * its bytes do not match the manifest's sha256.
     */
    public File modelFile(Manifest.Artifact a) {
        File dst = new File(new File(context.getFilesDir(), ASSET_DIR), a.file);
        if (dst.isFile() && dst.length() == a.bytes && Manifest.sha256(dst).equals(a.sha256)) {
            return dst;
        }
        InputStream in;
        try {
            in = assets.open(ASSET_DIR + "/" + a.file);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "model file " + a.file + " (" + a.platform + " "
                    + a.tower + " " + a.precision + ") is missing from the app's assets; " + HOW_TO_BUNDLE, e);
        }
        File tmp = new File(dst.getPath() + ".tmp");
        File parent = dst.getParentFile();
        if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot create " + parent);
        }
        try (InputStream s = in; OutputStream out = new FileOutputStream(tmp)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = s.read(buf)) != -1) {
                out.write(buf, 0, n);
            }
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot copy " + a.file + " out of the APK: " + e.getMessage(), e);
        }
        String got = Manifest.sha256(tmp);
        if (!got.equals(a.sha256)) {
            deleteQuietly(tmp);
            throw new SdkException(SdkException.Kind.MODEL_FILE, "model file " + a.file + " in the APK does not match "
                    + "its sha256 in manifest.json (bundled from another export?); " + HOW_TO_BUNDLE);
        }
        if (!tmp.renameTo(dst)) {
            deleteQuietly(tmp);
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot write " + dst);
        }
        return dst;
    }

    /** Asset paths of the gallery images (the golden sample PNGs), sorted; empty when none. */
    public List<String> galleryAssets() {
        List<String> out = new ArrayList<>();
        try {
            String[] names = assets.list(ASSET_DIR + "/golden");
            if (names != null) {
                for (String n : names) {
                    if (n.toLowerCase(java.util.Locale.ROOT).endsWith(".png")) {
                        out.add(ASSET_DIR + "/golden/" + n);
                    }
                }
            }
        } catch (IOException ignored) {
            // no gallery: the search screen says so
        }
        Collections.sort(out);
        return out;
    }

    public byte[] readAsset(String path) {
        try (InputStream in = assets.open(path)) {
            return Io.readAll(in);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot read asset " + path + ": " + e.getMessage(), e);
        }
    }

    private static void deleteQuietly(File f) {
        if (f.exists() && !f.delete()) {
            f.deleteOnExit();
        }
    }
}
