package com.mobilesdk.demo;

import com.mobilesdk.core.Backend;
import com.mobilesdk.core.Manifest;
import com.mobilesdk.core.SdkException;
import com.mobilesdk.core.TensorSpec;
import java.io.File;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/**
 * ExecuTorch (.pte, XNNPACK delegate) for the towers of one precision (by default the SDK's
 * "int8_dynamic", then static "int8"; see Manifest.defaultPrecision); the image tower alone when
 * the export ships no text tower (then the app classifies against the label bank). The programs
 * take exactly the model's raw inputs: float32 NCHW pixels and int32 token ids, and return float32
 * embeddings.
 */
public final class ExecuTorchBackend implements Backend {
    private final String name;
    private final Module image;
    /** null: the export ships no text tower at this precision. */
    private final Module text;
    private final long[] imageShape, textShape;
    private final boolean textInt64;

    public ExecuTorchBackend(Manifest manifest, String precision, ModelStore store) {
        Manifest.Artifact ia = manifest.find("executorch", "image", precision);
        Manifest.Artifact ta = manifest.find("executorch", "text", precision);
        if (ia == null) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "manifest.json lists no ExecuTorch image tower at "
                    + "precision " + precision + " (it has " + manifest.imagePrecisions("executorch") + ")");
        }
        this.name = "ExecuTorch " + precision + (ta == null ? " (image tower only)" : "");
        this.imageShape = longs(ia.inputs.get(0));
        this.textShape = ta == null ? null : longs(ta.inputs.get(0));
        this.textInt64 = ta != null && "int64".equals(ta.inputs.get(0).dtype);
        File imageFile = store.modelFile(ia);
        File textFile = ta == null ? null : store.modelFile(ta);
        this.image = load(imageFile, ia);
        Module t = null;
        if (ta != null) {
            try {
                t = load(textFile, ta);
            } catch (RuntimeException e) {
                image.destroy();
                throw e;
            }
        }
        this.text = t;
    }

    @Override
    public boolean hasTextTower() {
        return text != null;
    }

    private static long[] longs(TensorSpec spec) {
        int[] s = spec.shape();
        long[] out = new long[s.length];
        for (int i = 0; i < s.length; i++) {
            out[i] = s[i];
        }
        return out;
    }

    private static Module load(File file, Manifest.Artifact a) {
        Module m;
        try {
            m = Module.load(file.getAbsolutePath());
        } catch (RuntimeException | LinkageError e) {
            throw new SdkException(SdkException.Kind.BACKEND, "ExecuTorch cannot load " + a.file + ": " + e.getMessage(), e);
        }
        int err = m.loadMethod("forward");
        if (err != 0) {
            m.destroy();
            throw new SdkException(SdkException.Kind.BACKEND, "ExecuTorch cannot load method forward of " + a.file
                    + " (error 0x" + Integer.toHexString(err) + "); is the runtime at least as new as the exporter "
                    + "(executorch 1.5.1)?");
        }
        return m;
    }

    private float[] run(Module m, EValue input, String what) {
        EValue[] out;
        try {
            out = m.forward(input);
        } catch (RuntimeException e) {
            throw new SdkException(SdkException.Kind.BACKEND, name + " failed on the " + what + " tower: " + e.getMessage(), e);
        }
        if (out == null || out.length == 0) {
            throw new SdkException(SdkException.Kind.BACKEND, name + ": the " + what + " tower returned nothing");
        }
        return out[0].toTensor().getDataAsFloatArray();
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public float[] encodeImage(float[] nchw) {
        return run(image, EValue.from(Tensor.fromBlob(nchw, imageShape)), "image");
    }

    @Override
    public float[] encodeText(int[] ids) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, name + " has no text tower (the export ships the "
                    + "image tower only)");
        }
        Tensor t;
        if (textInt64) {
            long[] l = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                l[i] = ids[i];
            }
            t = Tensor.fromBlob(l, textShape);
        } else {
            t = Tensor.fromBlob(ids, textShape);
        }
        return run(text, EValue.from(t), "text");
    }

    @Override
    public void close() {
        image.destroy();
        if (text != null) {
            text.destroy();
        }
    }
}
