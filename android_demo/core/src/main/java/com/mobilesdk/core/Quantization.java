package com.mobilesdk.core;

/**
 * int8 input quantization and output dequantization with a tensor's scale and zero point, as the
 * Python TFLite runner does: q = clip(round_half_even(x / scale) + zero_point), x = (q - zp) * scale.
 */
public final class Quantization {
    private Quantization() {
    }

    /** float -> int8 (or uint8 when {@code unsigned}) with the spec's scale / zero point. */
    public static byte[] quantize(float[] x, TensorSpec spec) {
        if (!spec.isQuantized()) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "tensor " + spec + " is not quantized");
        }
        boolean unsigned = "uint8".equals(spec.dtype);
        int lo = unsigned ? 0 : -128, hi = unsigned ? 255 : 127;
        float scale = (float) (double) spec.scale;
        int zp = spec.zeroPoint == null ? 0 : spec.zeroPoint;
        byte[] out = new byte[x.length];
        for (int i = 0; i < x.length; i++) {
            double q = Math.rint(x[i] / scale) + zp; // float32 division as numpy does on float32 input
            out[i] = (byte) (int) Math.max(lo, Math.min(hi, q));
        }
        return out;
    }

    /** int8 / uint8 -> float with the spec's scale / zero point. */
    public static float[] dequantize(byte[] q, TensorSpec spec) {
        if (!spec.isQuantized()) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "tensor " + spec + " is not quantized");
        }
        boolean unsigned = "uint8".equals(spec.dtype);
        float scale = (float) (double) spec.scale;
        int zp = spec.zeroPoint == null ? 0 : spec.zeroPoint;
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            int v = unsigned ? q[i] & 0xFF : q[i];
            out[i] = (v - zp) * scale;
        }
        return out;
    }
}
