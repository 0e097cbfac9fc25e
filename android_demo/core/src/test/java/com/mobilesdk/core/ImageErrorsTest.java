package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Supplier;
import org.junit.Test;

/** Undecodable images give an IMAGE error with a message, never a crash or a wrong picture. */
public class ImageErrorsTest {
    private static byte[] goldenPng() {
        Object first = TestData.list(TestData.golden(), "images").get(0);
        return TestData.bytes(new File(TestData.goldenDir(), (String) TestData.obj(first, "image").get("file")));
    }

    private static void expectImageError(String what, Supplier<?> f) {
        try {
            f.get();
            fail(what + ": no error");
        } catch (SdkException e) {
            assertEquals(what + ": " + e.getMessage(), SdkException.Kind.IMAGE, e.kind());
            assertTrue(what, e.getMessage().startsWith("cannot decode"));
        }
    }

    @Test
    public void garbageIsRejected() {
        byte[] text = "this is not an image".getBytes(StandardCharsets.UTF_8);
        expectImageError("text", () -> PngDecoder.decode(text));
        expectImageError("text via ImageIO", () -> ImageIoDecoder.decode(text));
        expectImageError("empty", () -> PngDecoder.decode(new byte[0]));
        expectImageError("empty via ImageIO", () -> ImageIoDecoder.decode(new byte[0]));
        byte[] jpegHeader = {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, (byte) 0xE0, 0, 16};
        expectImageError("not a PNG", () -> PngDecoder.decode(jpegHeader));
    }

    @Test
    public void truncatedPngIsRejected() {
        byte[] png = goldenPng();
        for (int cut : new int[]{8, 20, 33, png.length / 2, png.length - 13}) {
            byte[] t = Arrays.copyOf(png, cut);
            expectImageError("PNG cut at " + cut, () -> PngDecoder.decode(t));
        }
        expectImageError("PNG cut via ImageIO", () -> ImageIoDecoder.decode(Arrays.copyOf(png, png.length / 2)));
    }

    @Test
    public void corruptPngIsRejected() {
        byte[] png = goldenPng();
        byte[] crc = png.clone();
        crc[png.length / 2] ^= 0x55; // inside IDAT: the chunk CRC no longer matches
        expectImageError("bad CRC", () -> PngDecoder.decode(crc));
        byte[] ihdr = png.clone();
        ihdr[16 + 8] = 7; // bit depth 7 (CRC fixed below)
        java.util.zip.CRC32 c = new java.util.zip.CRC32();
        c.update(ihdr, 12, 17);
        long v = c.getValue();
        ihdr[29] = (byte) (v >>> 24);
        ihdr[30] = (byte) (v >>> 16);
        ihdr[31] = (byte) (v >>> 8);
        ihdr[32] = (byte) v;
        expectImageError("bad bit depth", () -> PngDecoder.decode(ihdr));
    }

    @Test
    public void emptyImageIsRejected() {
        try {
            Preprocess.centerCropResize(new Preprocess.Rgb(0, 5, new byte[0]), 64);
            fail();
        } catch (SdkException e) {
            assertEquals(SdkException.Kind.IMAGE, e.kind());
            assertTrue(e.getMessage().contains("no pixels"));
        }
    }

    @Test
    public void exifOfJpegAndJunk() {
        // JPEG: SOI, APP1 "Exif\0\0" + big-endian TIFF with orientation 6, then SOS
        byte[] tiff = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
        byte[] jpeg = new byte[4 + 2 + 6 + tiff.length + 2];
        int len = 2 + 6 + tiff.length;
        byte[] head = {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, (byte) 0xE1, (byte) (len >> 8), (byte) len, 'E', 'x', 'i', 'f', 0, 0};
        System.arraycopy(head, 0, jpeg, 0, head.length);
        System.arraycopy(tiff, 0, jpeg, head.length, tiff.length);
        jpeg[jpeg.length - 2] = (byte) 0xFF;
        jpeg[jpeg.length - 1] = (byte) 0xDA;
        assertEquals(6, Exif.orientation(jpeg));
        assertEquals(1, Exif.orientation(Arrays.copyOf(jpeg, 15))); // truncated: no orientation
        assertEquals(1, Exif.orientation(new byte[]{1, 2, 3}));
        assertEquals(1, Exif.orientation(goldenPng()));
    }
}
