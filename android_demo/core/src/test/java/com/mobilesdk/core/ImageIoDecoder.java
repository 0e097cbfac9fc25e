package com.mobilesdk.core;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import org.w3c.dom.Node;

/**
 * Decoding with {@code javax.imageio} (the JVM's decoder; Android has BitmapFactory instead)
 * into a {@link RawImage} that matches PIL. ImageIO's conveniences would break exactness, so:
 * <ul>
 *   <li>the PNG colour type and bit depth come from the PNG metadata (IHDR), not from the
 *       ColorModel: ImageIO turns grey / RGB with a tRNS chunk into grey+alpha / RGBA images
 *       (PIL ignores that tRNS), and shows grey of depth 1/2/4 through an IndexColorModel;</li>
 *   <li>samples are read from the Raster, never with {@code getRGB} (which gamma-converts linear
 *       grey colour spaces and premultiplies nothing but does colour-convert);</li>
 *   <li>the palette and its tRNS alphas come from the PLTE / tRNS metadata (ImageIO pads or
 *       drops palette entries in the IndexColorModel);</li>
 *   <li>16-bit RGB / RGBA / grey+alpha keep the high byte (as PIL); 16-bit grey stays 16-bit;</li>
 *   <li>EXIF orientation comes from {@link Exif#orientation} on the file bytes.</li>
 * </ul>
 * Other formats (JPEG, ...) go through {@code getRGB} into RGBA; their pixels may differ from
 * PIL's decoder in the last bits (a different IDCT), so only PNG is exact.
 */
final class ImageIoDecoder {
    private ImageIoDecoder() {
    }

    static RawImage decode(byte[] file) {
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(file))) {
            Iterator<ImageReader> it = in == null ? null : ImageIO.getImageReaders(in);
            if (it == null || !it.hasNext()) {
                throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image: unknown format");
            }
            ImageReader reader = it.next();
            try {
                reader.setInput(in, true, false);
                BufferedImage img = reader.read(0);
                int orientation = Exif.orientation(file);
                if ("png".equalsIgnoreCase(reader.getFormatName())) {
                    return fromPng(img, reader.getImageMetadata(0), orientation);
                }
                int w = img.getWidth(), h = img.getHeight();
                int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
                return RawImage.fromArgb(w, h, argb, orientation);
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof SdkException) {
                throw (SdkException) e;
            }
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode image: " + e, e);
        }
    }

    private static Node child(Node n, String name) {
        for (Node c = n.getFirstChild(); c != null; c = c.getNextSibling()) {
            if (c.getNodeName().equals(name)) {
                return c;
            }
        }
        return null;
    }

    private static String attr(Node n, String name) {
        Node a = n.getAttributes().getNamedItem(name);
        return a == null ? null : a.getNodeValue();
    }

    private static RawImage fromPng(BufferedImage img, IIOMetadata meta, int orientation) {
        Node root = meta.getAsTree("javax_imageio_png_1.0");
        Node ihdr = child(root, "IHDR");
        String colorType = attr(ihdr, "colorType");
        int depth = Integer.parseInt(attr(ihdr, "bitDepth"));
        int w = img.getWidth(), h = img.getHeight();
        Raster r = img.getRaster();
        int n = w * h;
        switch (colorType) {
            case "Grayscale": {
                if (depth == 16) {
                    char[] d = new char[n];
                    for (int y = 0; y < h; y++) {
                        for (int x = 0; x < w; x++) {
                            d[y * w + x] = (char) r.getSample(x, y, 0);
                        }
                    }
                    return new RawImage(w, h, RawImage.Mode.I16, null, d, null, null, orientation);
                }
                int scale = r.getSampleModel().getSampleSize(0) < 8 ? 255 / ((1 << depth) - 1) : 1;
                return new RawImage(w, h, RawImage.Mode.L, bands(r, w, h, 1, depth, scale), null, null, null, orientation);
            }
            case "RGB":
                return new RawImage(w, h, RawImage.Mode.RGB, bands(r, w, h, 3, depth, 1), null, null, null, orientation);
            case "GrayAlpha":
                return new RawImage(w, h, RawImage.Mode.LA, bands(r, w, h, 2, depth, 1), null, null, null, orientation);
            case "RGBAlpha":
                return new RawImage(w, h, RawImage.Mode.RGBA, bands(r, w, h, 4, depth, 1), null, null, null, orientation);
            case "Palette": {
                byte[] pal = RawImage.greyRampPalette();
                Node plte = child(root, "PLTE");
                for (Node e = plte.getFirstChild(); e != null; e = e.getNextSibling()) {
                    int i = Integer.parseInt(attr(e, "index"));
                    pal[3 * i] = (byte) Integer.parseInt(attr(e, "red"));
                    pal[3 * i + 1] = (byte) Integer.parseInt(attr(e, "green"));
                    pal[3 * i + 2] = (byte) Integer.parseInt(attr(e, "blue"));
                }
                byte[] alpha = null;
                Node trns = child(root, "tRNS");
                Node tp = trns == null ? null : child(trns, "tRNS_Palette");
                if (tp != null) {
                    alpha = new byte[256];
                    Arrays.fill(alpha, (byte) 255);
                    for (Node e = tp.getFirstChild(); e != null; e = e.getNextSibling()) {
                        alpha[Integer.parseInt(attr(e, "index"))] = (byte) Integer.parseInt(attr(e, "alpha"));
                    }
                }
                return new RawImage(w, h, RawImage.Mode.P, bands(r, w, h, 1, 8, 1), null, pal, alpha, orientation);
            }
            default:
                throw new SdkException(SdkException.Kind.IMAGE, "cannot decode PNG: colour type " + colorType);
        }
    }

    /** The first {@code channels} bands as 8-bit samples (16-bit: high byte; low depths: scaled). */
    private static byte[] bands(Raster r, int w, int h, int channels, int depth, int scale) {
        if (r.getNumBands() < channels) {
            throw new SdkException(SdkException.Kind.IMAGE, "cannot decode PNG: " + r.getNumBands() + " bands, expected " + channels);
        }
        byte[] d = new byte[w * h * channels];
        int[] px = new int[r.getNumBands()];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                r.getPixel(x, y, px);
                for (int c = 0; c < channels; c++) {
                    int v = depth == 16 ? px[c] >>> 8 : px[c] * scale;
                    d[(y * w + x) * channels + c] = (byte) v;
                }
            }
        }
        return d;
    }
}
