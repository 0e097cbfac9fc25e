package com.mobilesdk.demo;

import com.mobilesdk.core.Backend;
import com.mobilesdk.core.Manifest;
import com.mobilesdk.core.Preprocess;
import com.mobilesdk.core.Quantization;
import com.mobilesdk.core.SdkException;
import com.mobilesdk.core.TensorSpec;
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * LiteRT (.tflite) on the CPU with XNNPACK: the towers of one precision (by default the
 * manifest's CPU int8 variant, {@link Manifest#defaultPrecision}); the image tower alone when the
 * export ships no text tower (then the app classifies against the label bank). Inputs and outputs follow the
 * tensors of the files themselves, checked against the manifest: NHWC image input (transposed
 * from NCHW here), int8 tensors quantized / dequantized with their own scale and zero point
 * (the image tower's int8 input has scale 1, zero point -128: pixel - 128), int32 token ids.
 */
public final class LiteRtBackend implements Backend {
    private final String name;
    private final Tower image;
    /** null: the export ships no text tower at this precision. */
    private final Tower text;
    private final int imageSize;

    public LiteRtBackend(Manifest manifest, String precision, ModelStore store, int threads) {
        Manifest.Artifact ia = manifest.find("tflite", "image", precision);
        Manifest.Artifact ta = manifest.find("tflite", "text", precision);
        if (ia == null) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "manifest.json lists no TFLite image tower at "
                    + "precision " + precision + " (it has " + manifest.imagePrecisions("tflite") + ")");
        }
        this.name = "LiteRT " + precision + (ta == null ? " (image tower only)" : "");
        this.imageSize = manifest.imageSize;
        this.image = new Tower(ia, store.modelFile(ia), threads);
        Tower t = null;
        if (ta != null) {
            try {
                t = new Tower(ta, store.modelFile(ta), threads);
            } catch (RuntimeException e) {
                image.close();
                throw e;
            }
        }
        this.text = t;
    }

    @Override
    public boolean hasTextTower() {
        return text != null;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public float[] encodeImage(float[] nchw) {
        int[] shape = image.input.shape();
        boolean nhwc = "NHWC".equals(image.artifact.inputs.get(0).layout)
                || (shape.length == 4 && shape[3] == 3 && shape[1] != 3);
        float[] x = nhwc ? Preprocess.nchwToNhwc(nchw, 3, imageSize, imageSize) : nchw;
        image.fill(x);
        return image.run();
    }

    @Override
    public float[] encodeText(int[] ids) {
        if (text == null) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, name + " has no text tower (the export ships the "
                    + "image tower only)");
        }
        text.fill(ids);
        return text.run();
    }

    @Override
    public void close() {
        image.close();
        if (text != null) {
            text.close();
        }
    }

    /** One .tflite with its input / output buffers. */
    private static final class Tower {
        final Manifest.Artifact artifact;
        final Interpreter interpreter;
        final Tensor input, output;
        final ByteBuffer in, out;

        Tower(Manifest.Artifact a, File file, int threads) {
            this.artifact = a;
            try {
                Interpreter.Options options = new Interpreter.Options();
                options.setNumThreads(threads);
                options.setUseXNNPACK(true);
                interpreter = new Interpreter(file, options);
            } catch (RuntimeException | LinkageError e) {
                throw new SdkException(SdkException.Kind.BACKEND, "LiteRT cannot load " + a.file + ": " + e.getMessage(), e);
            }
            input = interpreter.getInputTensor(0);
            output = interpreter.getOutputTensor(0);
            TensorSpec spec = a.inputs.get(0);
            TensorSpec outSpec = a.outputs.get(0);
            if (input.numElements() != spec.elementCount() || output.numElements() != outSpec.elementCount()) {
                interpreter.close();
                throw new SdkException(SdkException.Kind.MODEL_FILE, a.file + " has input " + Arrays.toString(input.shape())
                        + " / output " + Arrays.toString(output.shape()) + ", manifest.json says " + spec + " / " + outSpec
                        + "; bundle the manifest of the same export");
            }
            in = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder());
            out = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder());
        }

        private static TensorSpec quantSpec(Tensor t) {
            Tensor.QuantizationParams q = t.quantizationParams();
            return new TensorSpec(t.name(), t.shape(), t.dataType() == DataType.UINT8 ? "uint8" : "int8", "",
                    (double) q.getScale(), q.getZeroPoint());
        }

        void fill(float[] x) {
            in.clear();
            DataType dt = input.dataType();
            if (dt == DataType.FLOAT32) {
                in.asFloatBuffer().put(x);
            } else if (dt == DataType.INT8 || dt == DataType.UINT8) {
                in.put(Quantization.quantize(x, quantSpec(input)));
            } else {
                throw new SdkException(SdkException.Kind.BACKEND, artifact.file + ": unsupported pixel input type " + dt);
            }
            in.rewind();
        }

        void fill(int[] ids) {
            in.clear();
            DataType dt = input.dataType();
            if (dt == DataType.INT32) {
                in.asIntBuffer().put(ids);
            } else if (dt == DataType.INT64) {
                long[] l = new long[ids.length];
                for (int i = 0; i < ids.length; i++) {
                    l[i] = ids[i];
                }
                in.asLongBuffer().put(l);
            } else {
                throw new SdkException(SdkException.Kind.BACKEND, artifact.file + ": unsupported token input type " + dt);
            }
            in.rewind();
        }

        float[] run() {
            out.clear();
            try {
                interpreter.run(in, out);
            } catch (RuntimeException e) {
                throw new SdkException(SdkException.Kind.BACKEND, "LiteRT failed on " + artifact.file + ": " + e.getMessage(), e);
            }
            out.rewind();
            DataType dt = output.dataType();
            if (dt == DataType.FLOAT32) {
                float[] y = new float[output.numElements()];
                out.asFloatBuffer().get(y);
                return y;
            }
            if (dt == DataType.INT8 || dt == DataType.UINT8) {
                byte[] q = new byte[output.numElements()];
                out.get(q);
                return Quantization.dequantize(q, quantSpec(output));
            }
            throw new SdkException(SdkException.Kind.BACKEND, artifact.file + ": unsupported output type " + dt);
        }

        void close() {
            interpreter.close();
        }
    }
}
