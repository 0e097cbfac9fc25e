import Foundation

/// The image preprocessing of `mobile_sdk/preprocess.py`, step for step and in integer arithmetic,
/// so every output byte equals Python's (android_demo `Preprocess`, line for line):
/// 1. EXIF orientation (PIL's `exif_transpose`).
/// 2. Mode -> RGB: transparency (LA, RGBA, P with tRNS) over white,
///    `(c * a + 255 * (255 - a) + 127) / 255`; 16-bit grey `(v * 255 + 32767) / 65535`;
///    grey replicated; palette looked up.
/// 3. Center crop to the largest square: offsets ((w - s) / 2, (h - s) / 2), s = min(w, h).
/// 4. Exact area resize of the s x s square to size x size: the weights are the integer overlaps
///    of output interval [i*s, (i+1)*s) and source interval [j*size, (j+1)*size), and each output
///    is `(sum w * v + s*s / 2) / (s*s)`.
/// The model input is these bytes as float32 NCHW in [0, 255] (`toNCHW`); the model's mean / std
/// normalization is inside its graph. This is the manifest's resize rule "center_crop" (for a model
/// trained with bicubic resizing too: the SDK's parity checks and golden vectors use this same
/// recipe); `preprocess(_:spec:)` refuses any other rule.
/// Orientation is applied after step 2 here: both are per-pixel / per-position, so the order does
/// not change a byte. All values are non-negative, so Swift's `/` is Python's `//`.
public enum Preprocess {
    /// Steps 1-4 by the manifest's preprocessing spec: its image_size, and its resize rule, which
    /// must be "center_crop" (a clear `.manifest` error names any other).
    public static func preprocess(_ img: RawImage, spec: Manifest.Preprocessing) throws -> [UInt8] {
        try spec.requireSupported()
        return try preprocess(img, size: spec.imageSize)
    }

    /// Steps 1-4: uint8 (size, size, 3) HWC.
    public static func preprocess(_ img: RawImage, size: Int) throws -> [UInt8] {
        guard size >= 1 else {
            throw SDKError(.invalidArgument, "size must be >= 1, got \(size)")
        }
        return try centerCropResize(toRGB(img), size: size)
    }

    /// Steps 1-2.
    public static func toRGB(_ img: RawImage) throws -> RGBImage {
        let n = img.width * img.height
        var out = [UInt8](repeating: 0, count: n * 3)
        let d = img.data
        switch img.mode {
        case .L:
            for i in 0..<n {
                out[3 * i] = d[i]
                out[3 * i + 1] = d[i]
                out[3 * i + 2] = d[i]
            }
        case .LA:
            for i in 0..<n {
                let v = over(d[2 * i], d[2 * i + 1])
                out[3 * i] = v
                out[3 * i + 1] = v
                out[3 * i + 2] = v
            }
        case .RGB:
            out = d
        case .RGBA:
            for i in 0..<n {
                let a = d[4 * i + 3]
                out[3 * i] = over(d[4 * i], a)
                out[3 * i + 1] = over(d[4 * i + 1], a)
                out[3 * i + 2] = over(d[4 * i + 2], a)
            }
        case .P:
            let pal = img.palette ?? RawImage.greyRampPalette()
            for i in 0..<n {
                let k = Int(d[i])
                if let alpha = img.paletteAlpha {
                    let a = alpha[k]
                    out[3 * i] = over(pal[3 * k], a)
                    out[3 * i + 1] = over(pal[3 * k + 1], a)
                    out[3 * i + 2] = over(pal[3 * k + 2], a)
                } else {
                    out[3 * i] = pal[3 * k]
                    out[3 * i + 1] = pal[3 * k + 1]
                    out[3 * i + 2] = pal[3 * k + 2]
                }
            }
        case .I16:
            for i in 0..<n {
                let v = Int(img.data16[i])  // 0...65535: the clip of Python is a no-op here
                let g = UInt8((v * 255 + 32767) / 65535)
                out[3 * i] = g
                out[3 * i + 1] = g
                out[3 * i + 2] = g
            }
        }
        return try orient(RGBImage(width: img.width, height: img.height, hwc: out), img.orientation)
    }

    /// Alpha over white: (c * a + 255 * (255 - a) + 127) / 255.
    @inline(__always)
    static func over(_ c: UInt8, _ a: UInt8) -> UInt8 {
        let cc = Int(c), aa = Int(a)
        return UInt8((cc * aa + 255 * (255 - aa) + 127) / 255)
    }

    /// PIL's `exif_transpose`: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
    /// clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
    public static func orient(_ src: RGBImage, _ orientation: Int) throws -> RGBImage {
        if orientation <= 1 || orientation > 8 {
            return src
        }
        let w = src.width, h = src.height
        let swap = orientation >= 5
        let ow = swap ? h : w, oh = swap ? w : h
        var out = [UInt8](repeating: 0, count: ow * oh * 3)
        for y in 0..<oh {
            for x in 0..<ow {
                let sx: Int, sy: Int
                switch orientation {
                case 2: sx = w - 1 - x; sy = y
                case 3: sx = w - 1 - x; sy = h - 1 - y
                case 4: sx = x; sy = h - 1 - y
                case 5: sx = y; sy = x
                case 6: sx = y; sy = h - 1 - x
                case 7: sx = w - 1 - y; sy = h - 1 - x
                default: sx = w - 1 - y; sy = x  // 8
                }
                let s = (sy * w + sx) * 3, o = (y * ow + x) * 3
                out[o] = src.hwc[s]
                out[o + 1] = src.hwc[s + 1]
                out[o + 2] = src.hwc[s + 2]
            }
        }
        return try RGBImage(width: ow, height: oh, hwc: out)
    }

    /// Steps 3-4 on RGB pixels: uint8 (size, size, 3) HWC.
    public static func centerCropResize(_ rgb: RGBImage, size: Int) throws -> [UInt8] {
        let h = rgb.height, w = rgb.width
        if h == 0 || w == 0 {
            throw SDKError(.image, "image has no pixels (\(w)x\(h))")
        }
        if size < 1 {
            throw SDKError(.invalidArgument, "size must be >= 1, got \(size)")
        }
        let s = min(h, w)
        let y0 = (h - s) / 2, x0 = (w - s) / 2
        // weights[i] = overlaps of output i with source pixels first[i] ... first[i] + count - 1
        var first = [Int](repeating: 0, count: size)
        var weights = [[Int]](repeating: [], count: size)
        for i in 0..<size {
            let lo = i * s, hi = (i + 1) * s
            let j0 = lo / size, j1 = (hi - 1) / size
            first[i] = j0
            weights[i] = (j0...j1).map { j in min(hi, (j + 1) * size) - max(lo, j * size) }
        }
        var acc = [Int](repeating: 0, count: size * size * 3)
        var row = [Int](repeating: 0, count: size * 3)
        let px = rgb.hwc
        for r in 0..<s {
            let base = ((y0 + r) * w + x0) * 3
            // x pass on source row r
            for i in 0..<size {
                var a0 = 0, a1 = 0, a2 = 0
                var p = base + first[i] * 3
                for wt in weights[i] {
                    a0 += wt * Int(px[p])
                    a1 += wt * Int(px[p + 1])
                    a2 += wt * Int(px[p + 2])
                    p += 3
                }
                row[3 * i] = a0
                row[3 * i + 1] = a1
                row[3 * i + 2] = a2
            }
            // y pass: source row r covers [r*size, (r+1)*size); output k covers [k*s, (k+1)*s)
            let lo = r * size, hi = (r + 1) * size
            let k0 = lo / s, k1 = (hi - 1) / s
            var k = k0
            while k <= k1 && k < size {
                let wt = min(hi, (k + 1) * s) - max(lo, k * s)
                let o = k * size * 3
                for c in 0..<(size * 3) {
                    acc[o + c] += wt * row[c]
                }
                k += 1
            }
        }
        let denom = s * s
        var out = [UInt8](repeating: 0, count: size * size * 3)
        for i in 0..<out.count {
            out[i] = UInt8((acc[i] + denom / 2) / denom)
        }
        return out
    }

    /// uint8 HWC (size, size, 3) -> float32 NCHW (1, 3, size, size) in [0, 255].
    public static func toNCHW(_ hwc: [UInt8], size: Int) throws -> [Float] {
        let plane = size * size
        guard hwc.count == plane * 3 else {
            throw SDKError(.invalidArgument, "expected \(plane * 3) bytes, got \(hwc.count)")
        }
        var out = [Float](repeating: 0, count: plane * 3)
        for p in 0..<plane {
            out[p] = Float(hwc[3 * p])
            out[plane + p] = Float(hwc[3 * p + 1])
            out[2 * plane + p] = Float(hwc[3 * p + 2])
        }
        return out
    }
}
