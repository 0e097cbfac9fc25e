package com.mobilesdk.demo;

import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import com.mobilesdk.core.Exif;
import com.mobilesdk.core.PngDecoder;
import com.mobilesdk.core.RawImage;
import com.mobilesdk.core.SdkException;
import java.nio.ByteBuffer;

/**
 * Image decoding on Android. PNG goes through the core's pure-Java decoder, which gives PIL's
 * samples exactly (BitmapFactory would premultiply alpha, colour-convert embedded profiles and
 * reduce 16-bit grey differently). Every other format (JPEG from the camera, WebP, HEIF, ...)
 * goes through BitmapFactory with non-premultiplied ARGB_8888; the raw bytes are read with
 * copyPixelsToBuffer (getPixels would convert to sRGB) and the EXIF orientation is applied by the
 * core, as PIL's exif_transpose does. Decoders differ, so for those formats pixels may differ
 * from Python's in the last bits (see README.md).
 */
public final class AndroidImages {
    private AndroidImages() {
    }

    public static RawImage decode(byte[] bytes, String source) {
        if (bytes == null || bytes.length == 0) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source + ": the file is empty");
        }
        if (PngDecoder.isPng(bytes)) {
            try {
                return PngDecoder.decode(bytes);
            } catch (SdkException e) {
                throw new SdkException(SdkException.Kind.IMAGE, e.getMessage() + " (" + source + ")", e);
            }
        }
        BitmapFactory.Options bounds = new BitmapFactory.Options();
        bounds.inJustDecodeBounds = true;
        BitmapFactory.decodeByteArray(bytes, 0, bytes.length, bounds);
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source
                    + ": not an image format this device can read");
        }
        if ((long) bounds.outWidth * bounds.outHeight > PngDecoder.MAX_PIXELS) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source + ": "
                    + bounds.outWidth + "x" + bounds.outHeight + " pixels is too large");
        }
        BitmapFactory.Options o = new BitmapFactory.Options();
        o.inPreferredConfig = Bitmap.Config.ARGB_8888;
        o.inPremultiplied = false;
        o.inScaled = false;
        Bitmap b;
        try {
            b = BitmapFactory.decodeByteArray(bytes, 0, bytes.length, o);
        } catch (OutOfMemoryError e) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source + ": out of memory", e);
        }
        if (b == null) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source + ": the data is corrupt");
        }
        try {
            if (b.getConfig() != Bitmap.Config.ARGB_8888) {
                Bitmap c = b.copy(Bitmap.Config.ARGB_8888, false);
                b.recycle();
                if (c == null) {
                    throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image " + source + ": unsupported pixel format");
                }
                b = c;
            }
            int w = b.getWidth(), h = b.getHeight(), rowBytes = b.getRowBytes();
            ByteBuffer buf = ByteBuffer.allocate(rowBytes * h);
            b.copyPixelsToBuffer(buf); // raw RGBA bytes in memory order, not premultiplied, no colour conversion
            byte[] raw = buf.array();
            byte[] rgba = new byte[w * h * 4];
            for (int y = 0; y < h; y++) {
                System.arraycopy(raw, y * rowBytes, rgba, y * w * 4, w * 4);
            }
            return new RawImage(w, h, RawImage.Mode.RGBA, rgba, null, null, null, Exif.orientation(bytes));
        } finally {
            b.recycle();
        }
    }

    /** uint8 HWC pixels -> a bitmap to show (what the model sees). */
    public static Bitmap toBitmap(byte[] hwc, int size) {
        int[] argb = new int[size * size];
        for (int i = 0; i < argb.length; i++) {
            argb[i] = 0xFF000000 | ((hwc[3 * i] & 0xFF) << 16) | ((hwc[3 * i + 1] & 0xFF) << 8) | (hwc[3 * i + 2] & 0xFF);
        }
        return Bitmap.createBitmap(argb, size, size, Bitmap.Config.ARGB_8888);
    }
}
