#if canImport(ImageIO) && canImport(CoreGraphics)
import CoreGraphics
import Foundation
import ImageIO
import MobileSDKCore

/// The platform half of the preprocessing: encoded bytes -> `RawImage` with ImageIO, taking the
/// decoded samples straight from the CGImage's data provider (never drawing it, which would colour-
/// manage and premultiply), so that for PNG the samples are the ones PIL yields:
/// - grey 8 -> `.L`; grey 1/2/4 -> `.L` scaled by 255 / (2^bits - 1) (PIL's "1", "L;2", "L;4");
///   grey 16 -> `.I16` (either byte order ImageIO reports);
/// - grey + alpha -> `.LA`, RGB -> `.RGB`, RGBA -> `.RGBA` (16-bit: the high byte, as PIL's
///   "LA;16B" / "RGB;16B" / "RGBA;16B" unpackers); any component order / byte order CoreGraphics
///   describes with `alphaInfo` and `byteOrderInfo`;
/// - indexed -> `.P` with the colour table over libImaging's grey-ramp palette;
/// - the EXIF orientation from the image properties (PNG eXIf, JPEG APP1), as `exif_transpose`.
/// Caveats (README): premultiplied data (Xcode's "Compress PNG Files" CgBI PNGs: turn it off for
/// bundled images) is un-premultiplied, not exact; anything else (float, CMYK, ...) is drawn into an
/// sRGB context, not exact; JPEG / HEIC decoders differ from libjpeg in the last bits; a tRNS chunk
/// of a grey / RGB PNG may come back as alpha here while PIL ignores it.
public enum ImageDecoder {
    /// Decodes the first image of `data`; a clear `.image` error for anything unreadable.
    public static func decode(data: Data, source: String = "image") throws -> RawImage {
        guard !data.isEmpty else {
            throw SDKError(.image, "cannot read \(source): it has no bytes")
        }
        let optionValues: [CFString: Any] = [kCGImageSourceShouldCache: false]
        let options = optionValues as CFDictionary
        guard let src = CGImageSourceCreateWithData(data as CFData, options), CGImageSourceGetCount(src) > 0 else {
            throw SDKError(.image, "cannot read \(source): not an image format this device can decode")
        }
        guard CGImageSourceGetStatusAtIndex(src, 0) == .statusComplete,
              let cg = CGImageSourceCreateImageAtIndex(src, 0, options) else {
            throw SDKError(.image, "cannot read \(source): the image data is truncated or corrupt")
        }
        var orientation = 1
        if let props = CGImageSourceCopyPropertiesAtIndex(src, 0, nil) as? [String: Any],
           let value = props[kCGImagePropertyOrientation as String] as? Int {
            orientation = value
        }
        return try decode(cgImage: cg, orientation: orientation, source: source)
    }

    /// Reads and decodes a file.
    public static func decode(url: URL) throws -> RawImage {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SDKError(.image, "cannot read image \(url.path): \(error.localizedDescription)")
        }
        return try decode(data: data, source: url.lastPathComponent)
    }

    /// A CGImage (a camera frame, a UIImage's) with its EXIF orientation.
    public static func decode(cgImage cg: CGImage, orientation: Int = 1, source: String = "image") throws -> RawImage {
        guard cg.width > 0, cg.height > 0 else {
            throw SDKError(.image, "\(source) has no pixels (\(cg.width)x\(cg.height))")
        }
        if let raw = samples(cg, orientation: orientation) {
            return raw
        }
        return try redrawn(cg, orientation: orientation, source: source)
    }

    // MARK: samples as stored

    /// Where the components of one pixel are: `colorStart` / `alphaSlot` are logical component
    /// indices (CoreGraphics' big-endian order), `reverse` says 8-bit components sit in a
    /// little-endian pixel word, `little16` that 16-bit components are little-endian.
    private struct Layout {
        let components: Int
        let bytesPerComponent: Int
        let colorStart: Int
        let alphaSlot: Int?
        let premultiplied: Bool
        let reverse: Bool
        let little16: Bool

        /// Component k of the pixel at byte offset p, at its stored depth (8 or 16 bits).
        func value(_ b: [UInt8], _ p: Int, _ k: Int) -> Int {
            if bytesPerComponent == 1 {
                return Int(b[p + (reverse ? components - 1 - k : k)])
            }
            let q = p + 2 * k
            return little16 ? Int(b[q]) | Int(b[q + 1]) << 8 : Int(b[q]) << 8 | Int(b[q + 1])
        }

        /// Component k as 8 bits: 16-bit samples keep their high byte.
        func byte(_ b: [UInt8], _ p: Int, _ k: Int) -> UInt8 {
            let v = value(b, p, k)
            return UInt8(bytesPerComponent == 1 ? v : v >> 8)
        }
    }

    private static func layout(_ cg: CGImage, colors: Int) -> Layout? {
        let bpc = cg.bitsPerComponent, bpp = cg.bitsPerPixel
        guard bpc == 8 || bpc == 16, bpp % bpc == 0 else { return nil }
        let components = bpp / bpc
        var colorStart = 0, extra = 0
        var alphaSlot: Int?
        var premultiplied = false
        switch cg.alphaInfo {
        case .none:
            break
        case .last:
            extra = 1
            alphaSlot = colors
        case .premultipliedLast:
            extra = 1
            alphaSlot = colors
            premultiplied = true
        case .first:
            extra = 1
            alphaSlot = 0
            colorStart = 1
        case .premultipliedFirst:
            extra = 1
            alphaSlot = 0
            colorStart = 1
            premultiplied = true
        case .noneSkipLast:
            extra = 1
        case .noneSkipFirst:
            extra = 1
            colorStart = 1
        default:
            return nil
        }
        guard components == colors + extra else { return nil }
        let pixelBytes = bpp / 8
        var reverse = false, little16 = false
        switch cg.byteOrderInfo {
        case .orderDefault:
            break
        case .order16Little:
            if bpc == 16 {
                little16 = true
            } else if pixelBytes == 2 {
                reverse = true
            } else {
                return nil
            }
        case .order32Little:
            guard bpc == 8, pixelBytes == 4 else { return nil }
            reverse = true
        case .order16Big:
            guard bpc == 16 || pixelBytes == 2 else { return nil }
        case .order32Big:
            guard bpc == 8, pixelBytes == 4 else { return nil }
        default:
            return nil
        }
        return Layout(components: components, bytesPerComponent: bpc / 8, colorStart: colorStart,
                      alphaSlot: alphaSlot, premultiplied: premultiplied, reverse: reverse, little16: little16)
    }

    /// Straight alpha from premultiplied (not exact: premultiplication lost the low bits).
    private static func unpremultiply(_ c: UInt8, _ a: UInt8) -> UInt8 {
        if a == 0 {
            return 0
        }
        return UInt8(min(255, (Int(c) * 255 + Int(a) / 2) / Int(a)))
    }

    /// Sample k of a row of 1/2/4-bit samples.
    private static func packed(_ b: [UInt8], _ rowStart: Int, _ x: Int, _ bits: Int) -> Int {
        let bit = x * bits
        let shift = 8 - bits - bit % 8
        return (Int(b[rowStart + bit / 8]) >> shift) & ((1 << bits) - 1)
    }

    private static func samples(_ cg: CGImage, orientation: Int) -> RawImage? {
        guard !cg.bitmapInfo.contains(.floatComponents), let space = cg.colorSpace,
              let cfData = cg.dataProvider?.data else { return nil }
        let w = cg.width, h = cg.height, bpc = cg.bitsPerComponent, bpp = cg.bitsPerPixel, bpr = cg.bytesPerRow
        let bytes = [UInt8](cfData as Data)
        guard bpr > 0, bytes.count >= bpr * (h - 1) + (w * bpp + 7) / 8 else { return nil }
        let n = w * h

        switch space.model {
        case .indexed:
            guard bpc == bpp, [1, 2, 4, 8].contains(bpc), cg.alphaInfo == .none,
                  let base = space.baseColorSpace, base.model == .rgb, base.numberOfComponents == 3 else { return nil }
            let count = min(space.colorTableCount, 256)
            var table = [UInt8](repeating: 0, count: max(space.colorTableCount, 1) * 3)
            space.getColorTable(&table)
            var palette = RawImage.greyRampPalette()
            for i in 0..<(count * 3) {
                palette[i] = table[i]
            }
            var d = [UInt8](repeating: 0, count: n)
            for y in 0..<h {
                for x in 0..<w {
                    d[y * w + x] = UInt8(packed(bytes, y * bpr, x, bpc))
                }
            }
            return try? RawImage(width: w, height: h, mode: .P, data: d, palette: palette, orientation: orientation)

        case .monochrome:
            guard space.numberOfComponents == 1 else { return nil }
            if bpc == bpp, [1, 2, 4].contains(bpc), cg.alphaInfo == .none {
                let scale = 255 / ((1 << bpc) - 1)
                var d = [UInt8](repeating: 0, count: n)
                for y in 0..<h {
                    for x in 0..<w {
                        d[y * w + x] = UInt8(packed(bytes, y * bpr, x, bpc) * scale)
                    }
                }
                return try? RawImage(width: w, height: h, mode: .L, data: d, orientation: orientation)
            }
            guard let lay = layout(cg, colors: 1) else { return nil }
            let step = bpp / 8
            if let a = lay.alphaSlot {
                var d = [UInt8](repeating: 0, count: n * 2)
                for y in 0..<h {
                    for x in 0..<w {
                        let p = y * bpr + x * step, o = (y * w + x) * 2
                        let alpha = lay.byte(bytes, p, a)
                        let g = lay.byte(bytes, p, lay.colorStart)
                        d[o] = lay.premultiplied ? unpremultiply(g, alpha) : g
                        d[o + 1] = alpha
                    }
                }
                return try? RawImage(width: w, height: h, mode: .LA, data: d, orientation: orientation)
            }
            if lay.bytesPerComponent == 2 {
                var d16 = [UInt16](repeating: 0, count: n)
                for y in 0..<h {
                    for x in 0..<w {
                        d16[y * w + x] = UInt16(lay.value(bytes, y * bpr + x * step, lay.colorStart))
                    }
                }
                return try? RawImage(width: w, height: h, mode: .I16, data16: d16, orientation: orientation)
            }
            var d = [UInt8](repeating: 0, count: n)
            for y in 0..<h {
                for x in 0..<w {
                    d[y * w + x] = lay.byte(bytes, y * bpr + x * step, lay.colorStart)
                }
            }
            return try? RawImage(width: w, height: h, mode: .L, data: d, orientation: orientation)

        case .rgb:
            guard space.numberOfComponents == 3, let lay = layout(cg, colors: 3) else { return nil }
            let step = bpp / 8
            let c0 = lay.colorStart
            if let a = lay.alphaSlot {
                var d = [UInt8](repeating: 0, count: n * 4)
                for y in 0..<h {
                    for x in 0..<w {
                        let p = y * bpr + x * step, o = (y * w + x) * 4
                        let alpha = lay.byte(bytes, p, a)
                        for c in 0..<3 {
                            let v = lay.byte(bytes, p, c0 + c)
                            d[o + c] = lay.premultiplied ? unpremultiply(v, alpha) : v
                        }
                        d[o + 3] = alpha
                    }
                }
                return try? RawImage(width: w, height: h, mode: .RGBA, data: d, orientation: orientation)
            }
            var d = [UInt8](repeating: 0, count: n * 3)
            for y in 0..<h {
                for x in 0..<w {
                    let p = y * bpr + x * step, o = (y * w + x) * 3
                    d[o] = lay.byte(bytes, p, c0)
                    d[o + 1] = lay.byte(bytes, p, c0 + 1)
                    d[o + 2] = lay.byte(bytes, p, c0 + 2)
                }
            }
            return try? RawImage(width: w, height: h, mode: .RGB, data: d, orientation: orientation)

        default:
            return nil
        }
    }

    // MARK: fallback

    /// Any other layout: drawn into an 8-bit sRGB RGBA context (colour-managed and premultiplied,
    /// so not bit-exact against PIL), then un-premultiplied.
    private static func redrawn(_ cg: CGImage, orientation: Int, source: String) throws -> RawImage {
        let w = cg.width, h = cg.height
        let info = CGImageAlphaInfo.premultipliedLast.rawValue | CGImageByteOrderInfo.order32Big.rawValue
        guard let space = CGColorSpace(name: CGColorSpace.sRGB),
              let ctx = CGContext(data: nil, width: w, height: h, bitsPerComponent: 8, bytesPerRow: w * 4,
                                  space: space, bitmapInfo: info) else {
            throw SDKError(.image, "cannot read \(source): unsupported pixel format")
        }
        ctx.setBlendMode(.copy)
        ctx.interpolationQuality = .none
        ctx.draw(cg, in: CGRect(x: 0, y: 0, width: w, height: h))
        guard let base = ctx.data else {
            throw SDKError(.image, "cannot read \(source): drawing it failed")
        }
        let bpr = ctx.bytesPerRow
        let src = base.bindMemory(to: UInt8.self, capacity: bpr * h)
        var d = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h {
            for x in 0..<w {
                let p = y * bpr + x * 4, o = (y * w + x) * 4
                let a = src[p + 3]
                d[o] = unpremultiply(src[p], a)
                d[o + 1] = unpremultiply(src[p + 1], a)
                d[o + 2] = unpremultiply(src[p + 2], a)
                d[o + 3] = a
            }
        }
        return try RawImage(width: w, height: h, mode: .RGBA, data: d, orientation: orientation)
    }
}
#endif
