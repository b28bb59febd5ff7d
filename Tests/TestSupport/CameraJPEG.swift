import Foundation
import Imaging

/// Camera-style JPEGs made by the station's own encoder: YUYV frames (what
/// UVC cameras send uncompressed) become 4:2:2, RGB frames 4:2:0.
public enum CameraJPEG {
    /// A frame with a skin-like gradient, a dark lesion and sensor noise, so
    /// the JPEG has real entropy-coded data rather than flat blocks.
    public static func rgb(width: Int, height: Int, seed: UInt64 = 1) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        var s = seed
        for y in 0..<height {
            for x in 0..<width {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                let noise = Int(s >> 59) - 16
                let dx = x - width / 2, dy = y - height / 2
                let lesion = dx * dx + dy * dy < (width * width) / 40
                let base = lesion ? (90, 55, 40) : (225 - y * 40 / height, 170 - x * 30 / width, 150)
                let p = (y * width + x) * 3
                out[p] = UInt8(clamping: base.0 + noise)
                out[p + 1] = UInt8(clamping: base.1 + noise)
                out[p + 2] = UInt8(clamping: base.2 + noise)
            }
        }
        return out
    }

    /// YUYV from RGB (BT.601 full range).
    public static func yuyv(_ rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 2)
        for y in 0..<height {
            for x in stride(from: 0, to: width, by: 2) {
                func yuv(_ i: Int) -> (Double, Double, Double) {
                    let r = Double(rgb[i]), g = Double(rgb[i + 1]), b = Double(rgb[i + 2])
                    return (0.299 * r + 0.587 * g + 0.114 * b, -0.1687 * r - 0.3313 * g + 0.5 * b + 128, 0.5 * r - 0.4187 * g - 0.0813 * b + 128)
                }
                let a = yuv((y * width + x) * 3), b = yuv((y * width + x + 1) * 3)
                let o = (y * width + x) * 2
                out[o] = UInt8(clamping: Int(a.0.rounded())); out[o + 1] = UInt8(clamping: Int(((a.1 + b.1) / 2).rounded()))
                out[o + 2] = UInt8(clamping: Int(b.0.rounded())); out[o + 3] = UInt8(clamping: Int(((a.2 + b.2) / 2).rounded()))
            }
        }
        return out
    }

    public static func encode(_ format: RawPixelFormat, width: Int, height: Int, quality: Int = 90, seed: UInt64 = 1) throws -> [UInt8] {
        let rgb = rgb(width: width, height: height, seed: seed)
        let raw = format == .yuyv ? yuyv(rgb, width: width, height: height) : rgb
        return try raw.withUnsafeBytes { try [UInt8](JPEGEncoder(quality: quality).encode(RawFrameView(format: format, width: width, height: height, bytes: $0))) }
    }

    /// 4:2:2, as from a UVC camera's YUYV.
    public static func yuyv422(width: Int = 320, height: Int = 240, quality: Int = 90) throws -> [UInt8] {
        try encode(.yuyv, width: width, height: height, quality: quality)
    }

    /// 4:2:0.
    public static func rgb420(width: Int = 320, height: Int = 240, quality: Int = 90) throws -> [UInt8] {
        try encode(.rgb24, width: width, height: height, quality: quality)
    }

    /// A JPEG of odd length, to exercise the fragment's pad byte.
    public static func oddLength() throws -> [UInt8] {
        for q in 60...100 {
            let j = try yuyv422(width: 160, height: 120, quality: q)
            if j.count % 2 == 1 { return j }
        }
        throw NoOddLength()
    }
}

struct NoOddLength: Error, CustomStringConvertible {
    var description: String { "no quality gave an odd-length JPEG" }
}
