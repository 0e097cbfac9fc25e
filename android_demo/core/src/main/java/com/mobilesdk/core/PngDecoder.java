package com.mobilesdk.core;

import java.io.ByteArrayOutputStream;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A pure-Java PNG decoder (java.util.zip only, so it runs the same on a JVM and on Android) that
 * yields the samples PIL yields, so the preprocessing matches Python byte for byte whatever the
 * platform decoder would do (Android's BitmapFactory premultiplies alpha and converts embedded
 * colour profiles; ImageIO's {@code getRGB} gamma-converts grey):
 * <ul>
 *   <li>every colour type (grey, RGB, palette, grey+alpha, RGBA), bit depths 1/2/4/8/16, Adam7
 *       interlacing, all five filters; CRCs are checked (PIL rejects a bad CRC too);</li>
 *   <li>grey of depth 1/2/4 is scaled to 0..255 (PIL's "1", "L;2", "L;4"); 16-bit grey stays
 *       16-bit ({@link RawImage.Mode#I16}); 16-bit RGB / RGBA / grey+alpha keep the high byte of
 *       each sample (PIL's "RGB;16B", "RGBA;16B", "LA;16B" unpackers);</li>
 *   <li>tRNS counts only for palette images (PIL's P + "transparency"); for grey and RGB it is
 *       ignored, as PIL's {@code convert("RGB")} ignores it; gAMA / iCCP / sRGB are ignored, as
 *       PIL ignores them;</li>
 *   <li>the EXIF orientation of an eXIf chunk is returned in {@link RawImage#orientation}.</li>
 * </ul>
 * Every failure is an {@link SdkException} of kind IMAGE.
 */
public final class PngDecoder {
    /** PIL's decompression-bomb error limit: 2 x 89,478,485 pixels. */
    public static final long MAX_PIXELS = 2L * 89_478_485L;

    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    private static final int[][] ADAM7 = { // x0, y0, dx, dy
            {0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

    private PngDecoder() {
    }

    /** True when {@code data} starts with the PNG signature. */
    public static boolean isPng(byte[] data) {
        if (data == null || data.length < SIGNATURE.length) {
            return false;
        }
        for (int i = 0; i < SIGNATURE.length; i++) {
            if (data[i] != SIGNATURE[i]) {
                return false;
            }
        }
        return true;
    }

    private static SdkException bad(String what) {
        return new SdkException(SdkException.Kind.IMAGE, "cannot decode PNG: " + what);
    }

    private static long be32(byte[] f, int p) {
        return ((f[p] & 0xFFL) << 24) | ((f[p + 1] & 0xFFL) << 16) | ((f[p + 2] & 0xFFL) << 8) | (f[p + 3] & 0xFFL);
    }

    public static RawImage decode(byte[] f) {
        if (!isPng(f)) {
            throw bad("not a PNG file (bad signature)");
        }
        int pos = 8;
        int width = -1, height = -1, depth = 0, colorType = -1, interlace = 0;
        byte[] palette = null;
        byte[] trns = null;
        int orientation = 1;
        boolean sawIdat = false, sawIend = false;
        ByteArrayOutputStream idat = new ByteArrayOutputStream();
        CRC32 crc = new CRC32();
        boolean first = true;
        while (pos + 8 <= f.length) {
            long len = be32(f, pos);
            if (len > Integer.MAX_VALUE || pos + 12L + len > f.length) {
                throw bad("truncated file (chunk at byte " + pos + " runs past the end)");
            }
            int n = (int) len;
            String type = new String(f, pos + 4, 4, java.nio.charset.StandardCharsets.ISO_8859_1);
            for (int i = 0; i < 4; i++) {
                char c = type.charAt(i);
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
                    throw bad("invalid chunk type at byte " + pos);
                }
            }
            crc.reset();
            crc.update(f, pos + 4, 4 + n);
            if (crc.getValue() != be32(f, pos + 8 + n)) {
                throw bad("broken file (bad checksum in chunk " + type + ")");
            }
            int d = pos + 8;
            if (first && !type.equals("IHDR")) {
                throw bad("the first chunk is " + type + ", not IHDR");
            }
            first = false;
            switch (type) {
                case "IHDR":
                    if (n != 13) {
                        throw bad("bad IHDR length " + n);
                    }
                    long w = be32(f, d), h = be32(f, d + 4);
                    depth = f[d + 8] & 0xFF;
                    colorType = f[d + 9] & 0xFF;
                    interlace = f[d + 12] & 0xFF;
                    if (w <= 0 || h <= 0 || w > Integer.MAX_VALUE || h > Integer.MAX_VALUE) {
                        throw bad("invalid size " + w + "x" + h);
                    }
                    if (w * h > MAX_PIXELS) {
                        throw bad("image of " + w + "x" + h + " pixels exceeds the limit of " + MAX_PIXELS + " pixels");
                    }
                    width = (int) w;
                    height = (int) h;
                    if (f[d + 10] != 0 || f[d + 11] != 0 || interlace > 1) {
                        throw bad("unknown compression, filter or interlace method");
                    }
                    if (!validDepth(colorType, depth)) {
                        throw bad("unsupported colour type " + colorType + " with bit depth " + depth);
                    }
                    break;
                case "PLTE":
                    if (n % 3 != 0 || n == 0 || n > 768) {
                        throw bad("bad PLTE length " + n);
                    }
                    palette = RawImage.greyRampPalette();
                    System.arraycopy(f, d, palette, 0, n);
                    break;
                case "tRNS":
                    trns = new byte[n];
                    System.arraycopy(f, d, trns, 0, n);
                    break;
                case "eXIf":
                    orientation = Exif.tiffOrientation(f, d, n);
                    break;
                case "IDAT":
                    sawIdat = true;
                    idat.write(f, d, n);
                    break;
                case "IEND":
                    sawIend = true;
                    break;
                default:
                    break; // ancillary or unknown chunks are skipped, as PIL skips them
            }
            pos += 12 + n;
            if (sawIend) {
                break;
            }
        }
        if (width < 0) {
            throw bad("no IHDR chunk");
        }
        if (!sawIdat) {
            throw bad("no image data (IDAT)");
        }
        if (colorType == 3 && palette == null) {
            throw bad("palette image without a PLTE chunk");
        }
        int channels = channelsOf(colorType);
        int bitsPerPixel = channels * depth;
        int bpp = Math.max(1, bitsPerPixel / 8);

        // expected size of the decompressed stream
        long expected = 0;
        int[][] passes = interlace == 1 ? ADAM7 : new int[][]{{0, 0, 1, 1}};
        for (int[] p : passes) {
            long pw = (width - p[0] + p[2] - 1) / p[2], ph = (height - p[1] + p[3] - 1) / p[3];
            if (pw > 0 && ph > 0) {
                expected += ph * (1 + (pw * bitsPerPixel + 7) / 8);
            }
        }
        if (expected > Integer.MAX_VALUE - 16) {
            throw bad("image too large to decode");
        }
        byte[] raw = inflate(idat.toByteArray(), (int) expected);

        boolean i16 = colorType == 0 && depth == 16;
        int outChannels = channels; // palette: one index channel
        byte[] out8 = i16 ? null : new byte[width * height * outChannels];
        char[] out16 = i16 ? new char[width * height] : null;
        int scale = colorType == 0 && depth < 8 ? 255 / ((1 << depth) - 1) : 1;

        int off = 0;
        for (int[] p : passes) {
            int pw = (width - p[0] + p[2] - 1) / p[2], ph = (height - p[1] + p[3] - 1) / p[3];
            if (pw <= 0 || ph <= 0) {
                continue;
            }
            int rowBytes = (int) (((long) pw * bitsPerPixel + 7) / 8);
            byte[] prev = new byte[rowBytes];
            byte[] cur = new byte[rowBytes];
            for (int y = 0; y < ph; y++) {
                int filter = raw[off] & 0xFF;
                System.arraycopy(raw, off + 1, cur, 0, rowBytes);
                off += 1 + rowBytes;
                unfilter(filter, cur, prev, bpp);
                int oy = p[1] + y * p[3];
                for (int x = 0; x < pw; x++) {
                    int ox = p[0] + x * p[2];
                    int pix = oy * width + ox;
                    for (int c = 0; c < channels; c++) {
                        int s = sample(cur, x * channels + c, depth);
                        if (i16) {
                            out16[pix] = (char) s;
                        } else if (depth == 16) {
                            out8[pix * outChannels + c] = (byte) (s >>> 8); // PIL keeps the high byte
                        } else {
                            out8[pix * outChannels + c] = (byte) (s * scale);
                        }
                    }
                }
                byte[] t = prev;
                prev = cur;
                cur = t;
            }
        }

        switch (colorType) {
            case 0:
                return i16 ? new RawImage(width, height, RawImage.Mode.I16, null, out16, null, null, orientation)
                        : new RawImage(width, height, RawImage.Mode.L, out8, null, null, null, orientation);
            case 2:
                return new RawImage(width, height, RawImage.Mode.RGB, out8, null, null, null, orientation);
            case 3: {
                byte[] alpha = null;
                if (trns != null) {
                    alpha = new byte[256];
                    java.util.Arrays.fill(alpha, (byte) 255);
                    System.arraycopy(trns, 0, alpha, 0, Math.min(256, trns.length));
                }
                return new RawImage(width, height, RawImage.Mode.P, out8, null, palette, alpha, orientation);
            }
            case 4:
                return new RawImage(width, height, RawImage.Mode.LA, out8, null, null, null, orientation);
            default:
                return new RawImage(width, height, RawImage.Mode.RGBA, out8, null, null, null, orientation);
        }
    }

    private static boolean validDepth(int colorType, int depth) {
        switch (colorType) {
            case 0:
                return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
            case 3:
                return depth == 1 || depth == 2 || depth == 4 || depth == 8;
            case 2:
            case 4:
            case 6:
                return depth == 8 || depth == 16;
            default:
                return false;
        }
    }

    private static int channelsOf(int colorType) {
        switch (colorType) {
            case 2:
                return 3;
            case 4:
                return 2;
            case 6:
                return 4;
            default:
                return 1;
        }
    }

    private static byte[] inflate(byte[] z, int expected) {
        Inflater inf = new Inflater();
        try {
            inf.setInput(z);
            byte[] out = new byte[expected];
            int got = 0;
            while (got < expected) {
                int k = inf.inflate(out, got, expected - got);
                if (k == 0) {
                    if (inf.finished() || inf.needsInput()) {
                        throw bad("image data is truncated (" + got + " of " + expected + " bytes)");
                    }
                    if (inf.needsDictionary()) {
                        throw bad("image data needs a preset dictionary");
                    }
                }
                got += k;
            }
            return out;
        } catch (DataFormatException e) {
            throw bad("corrupt image data (" + e.getMessage() + ")");
        } finally {
            inf.end();
        }
    }

    private static void unfilter(int filter, byte[] cur, byte[] prev, int bpp) {
        int n = cur.length;
        switch (filter) {
            case 0:
                return;
            case 1:
                for (int i = bpp; i < n; i++) {
                    cur[i] = (byte) (cur[i] + cur[i - bpp]);
                }
                return;
            case 2:
                for (int i = 0; i < n; i++) {
                    cur[i] = (byte) (cur[i] + prev[i]);
                }
                return;
            case 3:
                for (int i = 0; i < n; i++) {
                    int a = i >= bpp ? cur[i - bpp] & 0xFF : 0;
                    cur[i] = (byte) (cur[i] + ((a + (prev[i] & 0xFF)) >>> 1));
                }
                return;
            case 4:
                for (int i = 0; i < n; i++) {
                    int a = i >= bpp ? cur[i - bpp] & 0xFF : 0;
                    int b = prev[i] & 0xFF;
                    int c = i >= bpp ? prev[i - bpp] & 0xFF : 0;
                    int pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
                    int pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
                    cur[i] = (byte) (cur[i] + pred);
                }
                return;
            default:
                throw bad("unknown filter type " + filter);
        }
    }

    private static int sample(byte[] row, int index, int depth) {
        switch (depth) {
            case 8:
                return row[index] & 0xFF;
            case 16:
                return ((row[2 * index] & 0xFF) << 8) | (row[2 * index + 1] & 0xFF);
            default: {
                int perByte = 8 / depth;
                int b = row[index / perByte] & 0xFF;
                int shift = 8 - depth * (index % perByte + 1);
                return (b >>> shift) & ((1 << depth) - 1);
            }
        }
    }
}
