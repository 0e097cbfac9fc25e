package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Decode + preprocess of every golden sample (modes RGB, RGBA, L, P, I;16; several sizes) gives
 * Python's pixels byte for byte, with the pure-Java decoder (what the app uses for PNG) and with
 * ImageIO.
 */
public class GoldenPixelsTest {
    private static List<Map<String, Object>> images() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object o : TestData.list(TestData.golden(), "images")) {
            out.add(TestData.obj(o, "image"));
        }
        return out;
    }

    private static void check(boolean imageIo) {
        int size = TestData.manifest().imageSize;
        List<Map<String, Object>> images = images();
        assertTrue("golden images present", images.size() >= 6);
        List<String> modes = new ArrayList<>();
        for (Map<String, Object> img : images) {
            String file = (String) img.get("file");
            byte[] png = TestData.bytes(new File(TestData.goldenDir(), file));
            assertEquals(file + " is the file the golden vectors were made from", img.get("png_sha256"), Manifest.sha256(png));
            RawImage raw = imageIo ? ImageIoDecoder.decode(png) : PngDecoder.decode(png);
            int[] wh = Json.asIntArray(img.get("size"), "size");
            assertEquals(file + " width", wh[0], raw.width);
            assertEquals(file + " height", wh[1], raw.height);
            byte[] got = Preprocess.preprocess(raw, size);
            byte[] want = TestData.toBytes(Json.asIntArray(img.get("pixels"), "pixels"));
            assertEquals(size * size * 3, want.length);
            int diff = TestData.firstDiff(want, got);
            assertEquals((imageIo ? "ImageIO: " : "PngDecoder: ") + file + " (mode " + img.get("mode")
                    + ") pixels differ from Python's at byte " + diff
                    + (diff >= 0 && diff < got.length ? " (" + (got[diff] & 0xFF) + " vs " + (want[diff] & 0xFF) + ")" : ""),
                    -1, diff);
            assertEquals(img.get("pixels_sha256"), Manifest.sha256(got));
            modes.add((String) img.get("mode"));
        }
        for (String m : new String[]{"RGB", "RGBA", "L", "P", "I;16"}) {
            assertTrue("golden samples cover mode " + m + " (have " + modes + ")", modes.contains(m));
        }
    }

    @Test
    public void pureJavaDecoderGivesPythonPixels() {
        check(false);
    }

    @Test
    public void imageIoGivesPythonPixels() {
        check(true);
    }

    @Test
    public void modelInputIsNchwFloat() {
        Map<String, Object> img = images().get(0);
        int size = TestData.manifest().imageSize;
        byte[] hwc = TestData.toBytes(Json.asIntArray(img.get("pixels"), "pixels"));
        float[] x = Preprocess.toNchw(hwc, size);
        assertEquals(3 * size * size, x.length);
        for (int y = 0; y < size; y += 7) {
            for (int xx = 0; xx < size; xx += 5) {
                for (int c = 0; c < 3; c++) {
                    assertEquals(hwc[(y * size + xx) * 3 + c] & 0xFF, x[c * size * size + y * size + xx], 0f);
                }
            }
        }
    }
}
