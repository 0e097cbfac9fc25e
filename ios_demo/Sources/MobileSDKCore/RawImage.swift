import Foundation

/// A decoded image before any conversion, in the terms of PIL's modes so that `Preprocess.toRGB`
/// can apply exactly the rules of `mobile_sdk/preprocess.py` (android_demo `RawImage`):
/// - `.L`: 8-bit grey (grey of depth 1, 2, 4 scaled to 0...255 as PIL does)
/// - `.LA`: grey + alpha, 8 bits each (16-bit files keep the high byte, as PIL does)
/// - `.RGB`, `.RGBA`: 8 bits per channel, alpha not premultiplied (16-bit files keep the high byte)
/// - `.P`: palette indices; `palette` 256 RGB triplets, `paletteAlpha` the tRNS alphas or nil when
///   the file has no transparency
/// - `.I16`: 16-bit grey in `data16`
/// `orientation` is the EXIF orientation (1...8; 1 = as stored). Decoding lives outside the core
/// (MobileSDKImageIO: ImageIO / CoreGraphics).
public struct RawImage: Sendable {
    public enum Mode: String, Sendable {
        case L, LA, RGB, RGBA, P, I16

        public var channels: Int {
            switch self {
            case .L, .P, .I16: return 1
            case .LA: return 2
            case .RGB: return 3
            case .RGBA: return 4
            }
        }
    }

    public let width: Int
    public let height: Int
    public let mode: Mode
    /// 8-bit samples, row-major, channels interleaved (empty for I16).
    public let data: [UInt8]
    /// 16-bit grey samples for I16 (empty otherwise).
    public let data16: [UInt16]
    /// 256 RGB triplets for P (nil otherwise).
    public let palette: [UInt8]?
    /// 256 alphas for P with transparency, else nil.
    public let paletteAlpha: [UInt8]?
    /// EXIF orientation 1...8.
    public let orientation: Int

    public init(width: Int, height: Int, mode: Mode, data: [UInt8] = [], data16: [UInt16] = [],
                palette: [UInt8]? = nil, paletteAlpha: [UInt8]? = nil, orientation: Int = 1) throws {
        guard width >= 0, height >= 0 else {
            throw SDKError(.image, "image size must not be negative: \(width)x\(height)")
        }
        let n = width * height
        if mode == .I16 {
            guard data16.count == n else {
                throw SDKError(.invalidArgument, "I16 image needs width*height 16-bit samples")
            }
        } else if data.count != n * mode.channels {
            throw SDKError(.invalidArgument, "\(mode) image needs width*height*\(mode.channels) samples, got \(data.count)")
        }
        if mode == .P, palette?.count != 768 {
            throw SDKError(.invalidArgument, "P image needs a 256-entry RGB palette")
        }
        if let alpha = paletteAlpha, alpha.count != 256 {
            throw SDKError(.invalidArgument, "palette alpha needs 256 entries")
        }
        self.width = width
        self.height = height
        self.mode = mode
        self.data = data
        self.data16 = data16
        self.palette = palette
        self.paletteAlpha = paletteAlpha
        self.orientation = (1...8).contains(orientation) ? orientation : 1
    }

    /// The palette libImaging starts from (a grey ramp), for entries a palette does not set.
    public static func greyRampPalette() -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 768)
        for i in 0..<256 {
            p[3 * i] = UInt8(i)
            p[3 * i + 1] = UInt8(i)
            p[3 * i + 2] = UInt8(i)
        }
        return p
    }
}

/// RGB pixels, row-major HWC.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let hwc: [UInt8]

    public init(width: Int, height: Int, hwc: [UInt8]) throws {
        guard width >= 0, height >= 0, hwc.count == width * height * 3 else {
            throw SDKError(.invalidArgument, "need width*height*3 bytes")
        }
        self.width = width
        self.height = height
        self.hwc = hwc
    }
}
