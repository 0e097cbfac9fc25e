package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The PNG variants the golden samples do not cover (png_fixtures/, written with the expected
 * pixels of Python's preprocessing by tools/make_png_fixtures.py): low and 16-bit depths, tRNS
 * on every colour type, interlacing, every filter, EXIF orientations 2-8. Both decoders (the
 * pure-Java one the app uses for PNG and ImageIO) must give Python's RGB and pixels exactly.
 */
public class PngFixturesTest {
    private static Map<String, Object> expected() {
        return Json.asObject(Json.parse(new String(TestData.resource("png_fixtures/expected.json"), StandardCharsets.UTF_8)),
                "expected.json");
    }

    private void check(boolean imageIo) {
        Map<String, Object> exp = expected();
        List<Object> files = Json.asList(exp.get("files"), "files");
        assertTrue("fixtures present", files.size() >= 20);
        for (Object o : files) {
            Map<String, Object> f = Json.asObject(o, "file");
            String name = (String) f.get("file");
            byte[] png = TestData.resource("png_fixtures/" + name);
            RawImage raw = imageIo ? ImageIoDecoder.decode(png) : PngDecoder.decode(png);
            Preprocess.Rgb rgb = Preprocess.toRgb(raw);
            int[] shape = Json.asIntArray(f.get("rgb_shape"), "rgb_shape");
            String who = (imageIo ? "ImageIO " : "PngDecoder ") + name + " (PIL mode " + f.get("pil_mode") + ")";
            assertEquals(who + " height", shape[0], rgb.height);
            assertEquals(who + " width", shape[1], rgb.width);
            byte[] want = TestData.toBytes(Json.asIntArray(f.get("rgb"), "rgb"));
            assertEquals(who + ": RGB differs at byte " + TestData.firstDiff(want, rgb.hwc), -1,
                    TestData.firstDiff(want, rgb.hwc));
            Map<String, Object> pixels = Json.asObject(f.get("pixels"), "pixels");
            for (Map.Entry<String, Object> e : pixels.entrySet()) {
                int size = Integer.parseInt(e.getKey());
                byte[] got = Preprocess.centerCropResize(rgb, size);
                byte[] w = TestData.toBytes(Json.asIntArray(e.getValue(), "pixels"));
                assertEquals(who + " size " + size + ": pixels differ at byte " + TestData.firstDiff(w, got), -1,
                        TestData.firstDiff(w, got));
            }
        }
    }

    @Test
    public void pureJavaDecoderMatchesPython() {
        check(false);
    }

    @Test
    public void imageIoDecoderMatchesPython() {
        check(true);
    }

    @Test
    public void exifOrientationIsRead() {
        for (int o = 1; o <= 8; o++) {
            byte[] png = TestData.resource("png_fixtures/exif_orientation" + o + "_5x3.png");
            assertEquals(o, Exif.orientation(png));
            assertEquals(o, PngDecoder.decode(png).orientation);
        }
    }
}
