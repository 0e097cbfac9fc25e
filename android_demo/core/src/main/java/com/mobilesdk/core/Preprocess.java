package com.mobilesdk.core;

/**
 * The image preprocessing of {@code mobile_sdk/preprocess.py}, step for step and in integer
 * arithmetic, so every output byte equals Python's:
 * <ol>
 *   <li>EXIF orientation (PIL's {@code exif_transpose}).</li>
 *   <li>Mode -> RGB: transparency (LA, RGBA, P with tRNS) over white,
 *       {@code (c * a + 255 * (255 - a) + 127) / 255}; 16-bit grey {@code (v * 255 + 32767) / 65535};
 *       grey replicated; palette looked up.</li>
 *   <li>Center crop to the largest square: offsets ((w - s) / 2, (h - s) / 2), s = min(w, h).</li>
 *   <li>Exact area resize of the s x s square to size x size: the weights are the integer overlaps
 *       of output interval [i*s, (i+1)*s) and source interval [j*size, (j+1)*size), and each output
 *       is {@code (sum w * v + s*s / 2) / (s*s)}.</li>
 * </ol>
 * The model input is these bytes as float32 NCHW in [0, 255] ({@link #toNchw}); the model's
 * mean / std normalization is inside its graph. This is the manifest's resize rule "center_crop"
 * (for a model trained with bicubic resizing too: the SDK's parity checks and golden vectors use
 * this same recipe); the {@link Manifest.Preprocessing} overloads refuse any other rule.
 */
public final class Preprocess {
    private Preprocess() {
    }

    /** RGB pixels, row-major HWC. */
    public static final class Rgb {
        public final int width, height;
        public final byte[] hwc;

        public Rgb(int width, int height, byte[] hwc) {
            if (hwc.length != (long) width * height * 3) {
                throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "need width*height*3 bytes");
            }
            this.width = width;
            this.height = height;
            this.hwc = hwc;
        }
    }

    /** Decode (PNG: the exact decoder; other formats need a platform decoder) and preprocess. */
    public static byte[] preprocessPng(byte[] file, int size) {
        return preprocess(PngDecoder.decode(file), size);
    }

    /** {@link #preprocessPng(byte[], int)} by the manifest's preprocessing spec. */
    public static byte[] preprocessPng(byte[] file, Manifest.Preprocessing spec) {
        spec.requireSupported();
        return preprocess(PngDecoder.decode(file), spec.imageSize);
    }

    /**
     * Steps 1-4 by the manifest's preprocessing spec: its image_size, and its resize rule, which
     * must be "center_crop" (a clear MANIFEST error names any other).
     */
    public static byte[] preprocess(RawImage img, Manifest.Preprocessing spec) {
        spec.requireSupported();
        return preprocess(img, spec.imageSize);
    }

    /** Steps 1-4: uint8 (size, size, 3) HWC. */
    public static byte[] preprocess(RawImage img, int size) {
        if (size < 1) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "size must be >= 1, got " + size);
        }
        return centerCropResize(toRgb(img), size);
    }

    /** Steps 1-2. */
    public static Rgb toRgb(RawImage img) {
        int n = img.width * img.height;
        byte[] out = new byte[n * 3];
        byte[] d = img.data;
        switch (img.mode) {
            case L:
                for (int i = 0; i < n; i++) {
                    out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = d[i];
                }
                break;
            case LA:
                for (int i = 0; i < n; i++) {
                    byte v = over(d[2 * i] & 0xFF, d[2 * i + 1] & 0xFF);
                    out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = v;
                }
                break;
            case RGB:
                System.arraycopy(d, 0, out, 0, n * 3);
                break;
            case RGBA:
                for (int i = 0; i < n; i++) {
                    int a = d[4 * i + 3] & 0xFF;
                    out[3 * i] = over(d[4 * i] & 0xFF, a);
                    out[3 * i + 1] = over(d[4 * i + 1] & 0xFF, a);
                    out[3 * i + 2] = over(d[4 * i + 2] & 0xFF, a);
                }
                break;
            case P: {
                byte[] pal = img.palette;
                byte[] alpha = img.paletteAlpha;
                for (int i = 0; i < n; i++) {
                    int k = d[i] & 0xFF;
                    if (alpha == null) {
                        out[3 * i] = pal[3 * k];
                        out[3 * i + 1] = pal[3 * k + 1];
                        out[3 * i + 2] = pal[3 * k + 2];
                    } else {
                        int a = alpha[k] & 0xFF;
                        out[3 * i] = over(pal[3 * k] & 0xFF, a);
                        out[3 * i + 1] = over(pal[3 * k + 1] & 0xFF, a);
                        out[3 * i + 2] = over(pal[3 * k + 2] & 0xFF, a);
                    }
                }
                break;
            }
            case I16:
                for (int i = 0; i < n; i++) {
                    long v = img.data16[i]; // 0..65535: the clip of Python is a no-op here
                    byte g = (byte) ((v * 255 + 32767) / 65535);
                    out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = g;
                }
                break;
            default:
                throw new SdkException(SdkException.Kind.IMAGE, "unsupported image mode " + img.mode);
        }
        return orient(new Rgb(img.width, img.height, out), img.orientation);
    }

    private static byte over(int c, int a) {
        return (byte) ((c * a + 255 * (255 - a) + 127) / 255);
    }

    /**
     * PIL's {@code exif_transpose}: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
     * clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
     */
    public static Rgb orient(Rgb src, int orientation) {
        if (orientation <= 1 || orientation > 8) {
            return src;
        }
        int w = src.width, h = src.height;
        boolean swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        byte[] out = new byte[ow * oh * 3];
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                int sx, sy;
                switch (orientation) {
                    case 2: sx = w - 1 - x; sy = y; break;
                    case 3: sx = w - 1 - x; sy = h - 1 - y; break;
                    case 4: sx = x; sy = h - 1 - y; break;
                    case 5: sx = y; sy = x; break;
                    case 6: sx = y; sy = h - 1 - x; break;
                    case 7: sx = w - 1 - y; sy = h - 1 - x; break;
                    default: sx = w - 1 - y; sy = x; break; // 8
                }
                int s = (sy * w + sx) * 3, o = (y * ow + x) * 3;
                out[o] = src.hwc[s];
                out[o + 1] = src.hwc[s + 1];
                out[o + 2] = src.hwc[s + 2];
            }
        }
        return new Rgb(ow, oh, out);
    }

    /** Steps 3-4 on RGB pixels: uint8 (size, size, 3) HWC. */
    public static byte[] centerCropResize(Rgb rgb, int size) {
        int h = rgb.height, w = rgb.width;
        if (h == 0 || w == 0) {
            throw new SdkException(SdkException.Kind.IMAGE, "image has no pixels (" + w + "x" + h + ")");
        }
        if (size < 1) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "size must be >= 1, got " + size);
        }
        int s = Math.min(h, w);
        int y0 = (h - s) / 2, x0 = (w - s) / 2;
        // weights[i] = overlaps of output i with source pixels first[i] .. first[i] + len - 1
        int[] first = new int[size];
        long[][] weights = new long[size][];
        for (int i = 0; i < size; i++) {
            long lo = (long) i * s, hi = (long) (i + 1) * s;
            int j0 = (int) (lo / size), j1 = (int) ((hi - 1) / size);
            first[i] = j0;
            weights[i] = new long[j1 - j0 + 1];
            for (int j = j0; j <= j1; j++) {
                weights[i][j - j0] = Math.min(hi, (long) (j + 1) * size) - Math.max(lo, (long) j * size);
            }
        }
        long[] acc = new long[size * size * 3];
        long[] row = new long[size * 3];
        byte[] px = rgb.hwc;
        for (int r = 0; r < s; r++) {
            int base = ((y0 + r) * w + x0) * 3;
            // x pass on source row r
            for (int i = 0; i < size; i++) {
                long a0 = 0, a1 = 0, a2 = 0;
                long[] wi = weights[i];
                int p = base + first[i] * 3;
                for (long wt : wi) {
                    a0 += wt * (px[p] & 0xFF);
                    a1 += wt * (px[p + 1] & 0xFF);
                    a2 += wt * (px[p + 2] & 0xFF);
                    p += 3;
                }
                row[3 * i] = a0;
                row[3 * i + 1] = a1;
                row[3 * i + 2] = a2;
            }
            // y pass: source row r covers [r*size, (r+1)*size); output k covers [k*s, (k+1)*s)
            long lo = (long) r * size, hi = (long) (r + 1) * size;
            int k0 = (int) (lo / s), k1 = (int) ((hi - 1) / s);
            for (int k = k0; k <= k1 && k < size; k++) {
                long wt = Math.min(hi, (long) (k + 1) * s) - Math.max(lo, (long) k * s);
                int o = k * size * 3;
                for (int c = 0; c < size * 3; c++) {
                    acc[o + c] += wt * row[c];
                }
            }
        }
        long denom = (long) s * s;
        byte[] out = new byte[size * size * 3];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) ((acc[i] + denom / 2) / denom);
        }
        return out;
    }

    /** uint8 HWC (size, size, 3) -> float32 NCHW (1, 3, size, size) in [0, 255]. */
    public static float[] toNchw(byte[] hwc, int size) {
        int plane = size * size;
        if (hwc.length != plane * 3) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "expected " + plane * 3 + " bytes, got " + hwc.length);
        }
        float[] out = new float[plane * 3];
        for (int p = 0; p < plane; p++) {
            out[p] = hwc[3 * p] & 0xFF;
            out[plane + p] = hwc[3 * p + 1] & 0xFF;
            out[2 * plane + p] = hwc[3 * p + 2] & 0xFF;
        }
        return out;
    }

    /** float NCHW (1, C, H, W) -> NHWC (1, H, W, C), for backends whose input is NHWC. */
    public static float[] nchwToNhwc(float[] nchw, int channels, int height, int width) {
        int plane = height * width;
        if (nchw.length != plane * channels) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "expected " + plane * channels + " values, got " + nchw.length);
        }
        float[] out = new float[nchw.length];
        for (int c = 0; c < channels; c++) {
            for (int p = 0; p < plane; p++) {
                out[p * channels + c] = nchw[c * plane + p];
            }
        }
        return out;
    }
}
