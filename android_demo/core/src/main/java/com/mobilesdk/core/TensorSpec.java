package com.mobilesdk.core;

import java.util.Arrays;

/**
 * One input or output of an artifact, as the manifest describes it: name, shape, dtype
 * ("float32", "int32", "int8", ...), layout ("NCHW", "NHWC", "NT", "NC") and, for quantized
 * tensors, scale and zero point (null otherwise).
 */
public final class TensorSpec {
    public final String name;
    private final int[] shape;
    public final String dtype;
    public final String layout;
    public final Double scale;
    public final Integer zeroPoint;

    public TensorSpec(String name, int[] shape, String dtype, String layout, Double scale, Integer zeroPoint) {
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.layout = layout == null ? "" : layout;
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    public int[] shape() {
        return shape.clone();
    }

    /** Number of elements: the product of the shape. */
    public int elementCount() {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (n > Integer.MAX_VALUE) {
            throw new SdkException(SdkException.Kind.MANIFEST, "tensor " + name + " is too large: " + Arrays.toString(shape));
        }
        return (int) n;
    }

    /** True when the tensor holds int8/uint8 values with a scale (real = (q - zero_point) * scale). */
    public boolean isQuantized() {
        return ("int8".equals(dtype) || "uint8".equals(dtype)) && scale != null && scale != 0.0;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + (layout.isEmpty() ? "" : " " + layout)
                + (isQuantized() ? " (scale " + scale + ", zero point " + zeroPoint + ")" : "");
    }
}
