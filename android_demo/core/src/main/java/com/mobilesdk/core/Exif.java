package com.mobilesdk.core;

/**
 * The EXIF orientation tag (0x0112 in IFD0), read from a JPEG's APP1 "Exif" segment or a PNG's
 * eXIf chunk: what PIL's {@code ImageOps.exif_transpose} acts on. Anything unreadable counts as
 * 1 (no transform), as in PIL.
 */
public final class Exif {
    private Exif() {
    }

    /** Orientation 1..8 of an encoded image file (JPEG or PNG); 1 when absent. */
    public static int orientation(byte[] file) {
        try {
            if (file.length >= 8 && (file[0] & 0xFF) == 0x89 && file[1] == 'P' && file[2] == 'N' && file[3] == 'G') {
                return pngOrientation(file);
            }
            if (file.length >= 4 && (file[0] & 0xFF) == 0xFF && (file[1] & 0xFF) == 0xD8) {
                return jpegOrientation(file);
            }
        } catch (RuntimeException e) {
            return 1;
        }
        return 1;
    }

    private static int pngOrientation(byte[] f) {
        int pos = 8;
        while (pos + 8 <= f.length) {
            long len = be32(f, pos);
            if (len < 0 || pos + 12 + len > f.length) {
                return 1;
            }
            if (f[pos + 4] == 'e' && f[pos + 5] == 'X' && f[pos + 6] == 'I' && f[pos + 7] == 'f') {
                return tiffOrientation(f, pos + 8, (int) len);
            }
            if (f[pos + 4] == 'I' && f[pos + 5] == 'E' && f[pos + 6] == 'N' && f[pos + 7] == 'D') {
                return 1;
            }
            pos += 12 + (int) len;
        }
        return 1;
    }

    private static int jpegOrientation(byte[] f) {
        int pos = 2;
        while (pos + 4 <= f.length) {
            if ((f[pos] & 0xFF) != 0xFF) {
                return 1;
            }
            int marker = f[pos + 1] & 0xFF;
            if (marker == 0xFF) {
                pos++;
                continue;
            }
            if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
                pos += 2;
                continue;
            }
            if (marker == 0xDA || marker == 0xD9) {
                return 1; // start of scan / end: no EXIF before the image data
            }
            int len = ((f[pos + 2] & 0xFF) << 8) | (f[pos + 3] & 0xFF);
            if (len < 2 || pos + 2 + len > f.length) {
                return 1;
            }
            int start = pos + 4;
            if (marker == 0xE1 && len >= 8 && f[start] == 'E' && f[start + 1] == 'x' && f[start + 2] == 'i'
                    && f[start + 3] == 'f' && f[start + 4] == 0 && f[start + 5] == 0) {
                return tiffOrientation(f, start + 6, len - 8);
            }
            pos += 2 + len;
        }
        return 1;
    }

    /** Orientation from a TIFF structure at f[off, off+len). */
    static int tiffOrientation(byte[] f, int off, int len) {
        if (len >= 6 && f[off] == 'E' && f[off + 1] == 'x' && f[off + 2] == 'i' && f[off + 3] == 'f'
                && f[off + 4] == 0 && f[off + 5] == 0) {
            off += 6; // some writers keep the JPEG prefix in a PNG eXIf chunk
            len -= 6;
        }
        if (len < 8) {
            return 1;
        }
        boolean little;
        if (f[off] == 'I' && f[off + 1] == 'I') {
            little = true;
        } else if (f[off] == 'M' && f[off + 1] == 'M') {
            little = false;
        } else {
            return 1;
        }
        if (u16(f, off + 2, little) != 42) {
            return 1;
        }
        long ifd = u32(f, off + 4, little);
        if (ifd < 8 || ifd + 2 > len) {
            return 1;
        }
        int p = off + (int) ifd;
        int n = u16(f, p, little);
        for (int i = 0; i < n; i++) {
            int e = p + 2 + 12 * i;
            if (e + 12 > off + len) {
                return 1;
            }
            if (u16(f, e, little) == 0x0112) {
                int type = u16(f, e + 2, little);
                int v;
                if (type == 3) { // SHORT
                    v = u16(f, e + 8, little);
                } else if (type == 4 || type == 9) { // LONG / SLONG
                    v = (int) u32(f, e + 8, little);
                } else if (type == 1 || type == 6 || type == 7) { // BYTE
                    v = f[e + 8] & 0xFF;
                } else {
                    return 1;
                }
                return v >= 1 && v <= 8 ? v : 1;
            }
        }
        return 1;
    }

    private static int u16(byte[] f, int p, boolean little) {
        return little ? (f[p] & 0xFF) | ((f[p + 1] & 0xFF) << 8) : ((f[p] & 0xFF) << 8) | (f[p + 1] & 0xFF);
    }

    private static long u32(byte[] f, int p, boolean little) {
        long v = little
                ? (f[p] & 0xFFL) | ((f[p + 1] & 0xFFL) << 8) | ((f[p + 2] & 0xFFL) << 16) | ((f[p + 3] & 0xFFL) << 24)
                : ((f[p] & 0xFFL) << 24) | ((f[p + 1] & 0xFFL) << 16) | ((f[p + 2] & 0xFFL) << 8) | (f[p + 3] & 0xFFL);
        return v;
    }

    private static long be32(byte[] f, int p) {
        return ((f[p] & 0xFFL) << 24) | ((f[p + 1] & 0xFFL) << 16) | ((f[p + 2] & 0xFFL) << 8) | (f[p + 3] & 0xFFL);
    }
}
