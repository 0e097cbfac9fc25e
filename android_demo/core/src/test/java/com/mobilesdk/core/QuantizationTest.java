package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;

import org.junit.Test;

public class QuantizationTest {
    @Test
    public void pixelInputOfScaleOneIsPixelMinus128() {
        TensorSpec spec = new TensorSpec("pixels", new int[]{1, 2, 2, 3}, "int8", "NHWC", 1.0, -128);
        float[] x = {0, 1, 127, 128, 254, 255, 0, 0, 0, 0, 0, 0};
        byte[] q = Quantization.quantize(x, spec);
        assertArrayEquals(new byte[]{-128, -127, -1, 0, 126, 127, -128, -128, -128, -128, -128, -128}, q);
    }

    @Test
    public void roundsHalfToEvenAndClips() {
        TensorSpec spec = new TensorSpec("x", new int[]{6}, "int8", "", 0.5, 0);
        // x / 0.5 = 0.5, 1.5, 2.5, -0.5, 1000, -1000 -> 0, 2, 2, -0, 127, -128
        assertArrayEquals(new byte[]{0, 2, 2, 0, 127, -128},
                Quantization.quantize(new float[]{0.25f, 0.75f, 1.25f, -0.25f, 500f, -500f}, spec));
    }

    @Test
    public void dequantizes() {
        TensorSpec spec = new TensorSpec("embedding", new int[]{1, 3}, "int8", "NC", 0.0078125, 3);
        assertArrayEquals(new float[]{-131 * 0.0078125f, 0f, 124 * 0.0078125f},
                Quantization.dequantize(new byte[]{-128, 3, 127}, spec), 0f);
        TensorSpec u = new TensorSpec("u", new int[]{2}, "uint8", "", 2.0, 128);
        assertArrayEquals(new float[]{-256f, 254f}, Quantization.dequantize(new byte[]{0, (byte) 255}, u), 0f);
    }
}
