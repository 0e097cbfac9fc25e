package com.mobilesdk.core;

/**
 * A decoded image before any conversion, in the terms of PIL's modes so that
 * {@link Preprocess#toRgb} can apply exactly the rules of {@code mobile_sdk/preprocess.py}:
 * <ul>
 *   <li>{@link Mode#L}: 8-bit grey (PNG grey of depth 1, 2, 4 scaled to 0..255 as PIL does;
 *       a grey tRNS is ignored, as PIL's {@code convert("RGB")} ignores it)</li>
 *   <li>{@link Mode#LA}: grey + alpha, 8 bits each (16-bit files keep the high byte, as PIL does)</li>
 *   <li>{@link Mode#RGB}, {@link Mode#RGBA}: 8 bits per channel (16-bit files keep the high byte)</li>
 *   <li>{@link Mode#P}: palette indices; {@link #palette} RGB triplets, {@link #paletteAlpha} the
 *       tRNS alphas or null when the file has no transparency</li>
 *   <li>{@link Mode#I16}: 16-bit grey in {@link #data16}</li>
 * </ul>
 * {@link #orientation} is the EXIF orientation (1..8; 1 = as stored).
 */
public final class RawImage {
    public enum Mode {
        L(1), LA(2), RGB(3), RGBA(4), P(1), I16(1);

        public final int channels;

        Mode(int channels) {
            this.channels = channels;
        }
    }

    public final int width, height;
    public final Mode mode;
    /** 8-bit samples, row-major, channels interleaved (null for I16). */
    public final byte[] data;
    /** 16-bit grey samples for I16 (null otherwise). */
    public final char[] data16;
    /** 256 RGB triplets for P (null otherwise). */
    public final byte[] palette;
    /** 256 alphas for P with transparency, else null. */
    public final byte[] paletteAlpha;
    /** EXIF orientation 1..8. */
    public final int orientation;

    public RawImage(int width, int height, Mode mode, byte[] data, char[] data16, byte[] palette,
                    byte[] paletteAlpha, int orientation) {
        if (width < 0 || height < 0) {
            throw new SdkException(SdkException.Kind.IMAGE, "image size must not be negative: " + width + "x" + height);
        }
        long n = (long) width * height;
        if (mode == Mode.I16) {
            if (data16 == null || data16.length != n) {
                throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "I16 image needs width*height 16-bit samples");
            }
        } else if (data == null || data.length != n * mode.channels) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, mode + " image needs width*height*"
                    + mode.channels + " samples, got " + (data == null ? "none" : data.length));
        }
        if (mode == Mode.P && (palette == null || palette.length != 768)) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "P image needs a 256-entry RGB palette");
        }
        if (paletteAlpha != null && paletteAlpha.length != 256) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "palette alpha needs 256 entries");
        }
        this.width = width;
        this.height = height;
        this.mode = mode;
        this.data = data;
        this.data16 = data16;
        this.palette = palette;
        this.paletteAlpha = paletteAlpha;
        this.orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;
    }

    /**
     * An image from non-premultiplied ARGB ints (Android's {@code Bitmap.getPixels} of a bitmap
     * decoded with {@code inPremultiplied = false}); RGBA, so alpha is composited over white
     * (a no-op where alpha is 255).
     */
    public static RawImage fromArgb(int width, int height, int[] argb, int orientation) {
        if (argb.length != (long) width * height) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT, "need width*height ARGB pixels");
        }
        byte[] d = new byte[argb.length * 4];
        for (int i = 0, o = 0; i < argb.length; i++) {
            int p = argb[i];
            d[o++] = (byte) (p >>> 16);
            d[o++] = (byte) (p >>> 8);
            d[o++] = (byte) p;
            d[o++] = (byte) (p >>> 24);
        }
        return new RawImage(width, height, Mode.RGBA, d, null, null, null, orientation);
    }

    /** The palette libImaging starts from (a grey ramp), for entries a PLTE chunk does not set. */
    public static byte[] greyRampPalette() {
        byte[] p = new byte[768];
        for (int i = 0; i < 256; i++) {
            p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = (byte) i;
        }
        return p;
    }

    /** The same pixels with another EXIF orientation. */
    public RawImage withOrientation(int orientation) {
        return new RawImage(width, height, mode, data, data16, palette, paletteAlpha, orientation);
    }
}
