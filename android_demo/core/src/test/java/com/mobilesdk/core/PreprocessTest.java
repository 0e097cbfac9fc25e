package com.mobilesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.Random;
import org.junit.Test;

/** The integer pipeline against a direct (slow, obviously right) implementation of its definition. */
public class PreprocessTest {
    /** Output (i, k) = round(sum over source pixels of overlap_x * overlap_y * v / s^2), half up. */
    private static byte[] reference(Preprocess.Rgb rgb, int size) {
        int s = Math.min(rgb.width, rgb.height);
        int x0 = (rgb.width - s) / 2, y0 = (rgb.height - s) / 2;
        byte[] out = new byte[size * size * 3];
        for (int k = 0; k < size; k++) {
            for (int i = 0; i < size; i++) {
                for (int c = 0; c < 3; c++) {
                    long acc = 0;
                    for (int y = 0; y < s; y++) {
                        long wy = Math.max(0, Math.min((long) (k + 1) * s, (long) (y + 1) * size) - Math.max((long) k * s, (long) y * size));
                        if (wy == 0) {
                            continue;
                        }
                        for (int x = 0; x < s; x++) {
                            long wx = Math.max(0, Math.min((long) (i + 1) * s, (long) (x + 1) * size) - Math.max((long) i * s, (long) x * size));
                            acc += wy * wx * (rgb.hwc[((y0 + y) * rgb.width + x0 + x) * 3 + c] & 0xFF);
                        }
                    }
                    long d = (long) s * s;
                    out[(k * size + i) * 3 + c] = (byte) ((acc + d / 2) / d);
                }
            }
        }
        return out;
    }

    private static Preprocess.Rgb random(Random r, int w, int h) {
        byte[] b = new byte[w * h * 3];
        r.nextBytes(b);
        return new Preprocess.Rgb(w, h, b);
    }

    @Test
    public void areaResizeMatchesItsDefinition() {
        Random r = new Random(10);
        int[][] cases = {{64, 64, 64}, {200, 120, 64}, {90, 90, 64}, {50, 70, 64}, {7, 5, 64}, {1, 1, 4}, {33, 97, 16},
                {129, 128, 13}, {3, 300, 7}, {64, 48, 1}};
        for (int[] c : cases) {
            Preprocess.Rgb img = random(r, c[0], c[1]);
            assertArrayEquals(c[0] + "x" + c[1] + " -> " + c[2], reference(img, c[2]), Preprocess.centerCropResize(img, c[2]));
        }
    }

    @Test
    public void identityAndConstantImages() {
        Random r = new Random(1);
        Preprocess.Rgb img = random(r, 16, 16);
        assertArrayEquals(img.hwc, Preprocess.centerCropResize(img, 16));
        byte[] flat = new byte[30 * 20 * 3];
        java.util.Arrays.fill(flat, (byte) 201);
        byte[] out = Preprocess.centerCropResize(new Preprocess.Rgb(30, 20, flat), 64);
        for (byte b : out) {
            assertEquals(201, b & 0xFF);
        }
    }

    @Test
    public void orientationsMapPixelsLikePil() {
        // 3x2 image with distinct pixels p(x, y) = 10 * y + x in every channel
        byte[] b = new byte[3 * 2 * 3];
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 3; x++) {
                for (int c = 0; c < 3; c++) {
                    b[(y * 3 + x) * 3 + c] = (byte) (10 * y + x);
                }
            }
        }
        Preprocess.Rgb img = new Preprocess.Rgb(3, 2, b);
        // first row of the output for each orientation (PIL's exif_transpose)
        int[][] firstRow = {null, {0, 1, 2}, {2, 1, 0}, {12, 11, 10}, {10, 11, 12}, {0, 10}, {10, 0}, {12, 2}, {2, 12}};
        for (int o = 1; o <= 8; o++) {
            Preprocess.Rgb t = Preprocess.orient(img, o);
            assertEquals(o >= 5 ? 2 : 3, t.width);
            assertEquals(o >= 5 ? 3 : 2, t.height);
            for (int x = 0; x < t.width; x++) {
                assertEquals("orientation " + o + " x " + x, firstRow[o][x], t.hwc[x * 3]);
            }
        }
    }

    @Test
    public void nchwToNhwcTransposes() {
        float[] nchw = {1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400}; // C=3, H=2, W=2
        assertArrayEquals(new float[]{1, 10, 100, 2, 20, 200, 3, 30, 300, 4, 40, 400},
                Preprocess.nchwToNhwc(nchw, 3, 2, 2), 0f);
    }

    @Test
    public void argbBitmapPixelsComposeOverWhite() {
        int[] argb = {0xFF102030, 0x00102030, 0x80FF0000};
        byte[] px = Preprocess.toRgb(RawImage.fromArgb(3, 1, argb, 1)).hwc;
        assertArrayEquals(new byte[]{0x10, 0x20, 0x30, (byte) 255, (byte) 255, (byte) 255,
                (byte) 255, (byte) ((0 * 128 + 255 * 127 + 127) / 255), (byte) ((0 * 128 + 255 * 127 + 127) / 255)}, px);
    }
}
