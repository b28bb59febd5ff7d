import Foundation
@testable import Imaging

/// Builds raw frames in every layout from an RGB picture, using the JFIF
/// full-range conversion, so encode/decode round trips can be checked.
enum TestImages {
    static let bars: [(UInt8, UInt8, UInt8)] = [
        (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0),
    ]

    /// Eight vertical bars.
    static func barsRGB(width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let c = bars[x * 8 / width]
                let i = (y * width + x) * 3
                out[i] = c.0; out[i + 1] = c.1; out[i + 2] = c.2
            }
        }
        return out
    }

    /// Greyscale: a fine checkerboard (sharp) or a flat field.
    static func grey(width: Int, height: Int, _ f: (Int, Int) -> UInt8) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height { for x in 0..<width { out[y * width + x] = f(x, y) } }
        return out
    }

    static func ycc(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
        let r = Double(r), g = Double(g), b = Double(b)
        func c(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
        return (c(0.299 * r + 0.587 * g + 0.114 * b), c(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
                c(128 + 0.5 * r - 0.418688 * g - 0.081312 * b))
    }

    /// Converts packed RGB into `format` with rows `bytesPerLine` apart (padding filled with 0x55).
    static func raw(_ rgb: [UInt8], width: Int, height: Int, format: RawPixelFormat, bytesPerLine: Int? = nil,
                    range: YCbCrRange = .full) -> [UInt8] {
        let bpl = bytesPerLine ?? format.minimumBytesPerLine(width: width)
        var out = [UInt8](repeating: 0x55, count: format.frameSize(width: width, height: height, bytesPerLine: bpl))
        func px(_ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
            let i = (y * width + x) * 3
            let f = ycc(rgb[i], rgb[i + 1], rgb[i + 2])
            guard range == .limited else { return f }
            // Studio swing, as V4L2 drivers deliver by default.
            func c(_ v: UInt8) -> UInt8 { UInt8((128 + (Double(v) - 128) * 224 / 255).rounded()) }
            return (UInt8((16 + Double(f.0) * 219 / 255).rounded()), c(f.1), c(f.2))
        }
        switch format {
        case .rgb24:
            for y in 0..<height { for x in 0..<(width * 3) { out[y * bpl + x] = rgb[y * width * 3 + x] } }
        case .yuyv:
            for y in 0..<height {
                for x in stride(from: 0, to: width, by: 2) {
                    let a = px(x, y), b = px(x + 1, y)
                    let o = y * bpl + x * 2
                    out[o] = a.0; out[o + 1] = UInt8((Int(a.1) + Int(b.1)) / 2); out[o + 2] = b.0; out[o + 3] = UInt8((Int(a.2) + Int(b.2)) / 2)
                }
            }
        case .nv12, .yu12:
            for y in 0..<height { for x in 0..<width { out[y * bpl + x] = px(x, y).0 } }
            let cs = format == .nv12 ? bpl : (bpl + 1) / 2
            let ch = (height + 1) / 2
            for cy in 0..<ch {
                for cx in 0..<(width / 2) {
                    let p = px(cx * 2, cy * 2)
                    if format == .nv12 {
                        out[bpl * height + cy * cs + cx * 2] = p.1
                        out[bpl * height + cy * cs + cx * 2 + 1] = p.2
                    } else {
                        out[bpl * height + cy * cs + cx] = p.1
                        out[bpl * height + cs * ch + cy * cs + cx] = p.2
                    }
                }
            }
        }
        return out
    }

    /// Hue in degrees (nil for greys), from 8-bit RGB.
    static func hue(_ c: (r: UInt8, g: UInt8, b: UInt8)) -> Double? {
        let r = Double(c.r) / 255, g = Double(c.g) / 255, b = Double(c.b) / 255
        let mx = max(r, g, b), mn = min(r, g, b), d = mx - mn
        guard d > 0.2 else { return nil }
        var h: Double
        if mx == r { h = 60 * ((g - b) / d).truncatingRemainder(dividingBy: 6) }
        else if mx == g { h = 60 * ((b - r) / d + 2) }
        else { h = 60 * ((r - g) / d + 4) }
        if h < 0 { h += 360 }
        return h
    }

    static func hueDistance(_ a: Double, _ b: Double) -> Double {
        let d = abs(a - b).truncatingRemainder(dividingBy: 360)
        return min(d, 360 - d)
    }

    /// The expected hue of each bar (nil for white and black).
    static let barHues: [Double?] = [nil, 60, 180, 120, 300, 0, 240, nil]
}
