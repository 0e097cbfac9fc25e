package com.mobilesdk.core;

/**
 * One runtime that runs the towers of the model (the app implements it with LiteRT and with
 * ExecuTorch). Inputs are the model's raw inputs as the manifest describes them: float32 NCHW
 * pixels in [0, 255] of shape (1, 3, image_size, image_size) and int32 token ids of shape
 * (1, context_length); outputs are float32 embeddings of shape (1, embed_dim). A backend whose
 * artifact is NHWC or int8 converts inside (see {@link Quantization}, {@link Preprocess#nchwToNhwc}).
 */
public interface Backend extends AutoCloseable {
    /** A short name for the UI ("LiteRT int8_cpu", ...). */
    String name();

    float[] encodeImage(float[] nchw);

    float[] encodeText(int[] ids);

    /**
     * Whether this backend runs a text tower; false for an image-tower-only export (then
     * {@link #encodeText} throws, and zero-shot classification goes through a {@link LabelBank}).
     */
    default boolean hasTextTower() {
        return true;
    }

    @Override
    void close();
}
