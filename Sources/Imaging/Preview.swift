import Foundation

/// The small JPEG sent ahead of the full image so a specialist can triage
/// a case even over a 64 kbit/s link.
public enum Preview {
    /// JPEG quality of previews: small files, still good enough to judge framing and colour.
    public static let defaultQuality = 80

    /// Decodes `jpeg` (downscaled in the DCT domain where possible), resamples
    /// it to `width` pixels wide keeping the aspect ratio, and re-encodes it.
    /// Images narrower than `width` keep their own size.
    public static func make(fromJPEG jpeg: Data, width: Int, quality: Int = defaultQuality) throws(ImagingError) -> Data {
        let decoder = try JPEGDecoder()
        let encoder = try JPEGEncoder(quality: quality)
        return try make(fromJPEG: jpeg, width: width, decoder: decoder, encoder: encoder)
    }

    /// As `make(fromJPEG:width:quality:)`, reusing a caller's codec handles.
    public static func make(fromJPEG jpeg: Data, width: Int, decoder: JPEGDecoder, encoder: JPEGEncoder) throws(ImagingError) -> Data {
        guard width > 0 else { throw ImagingError(.invalidFrame, "preview width \(width) must be positive") }
        let decoded = try decoder.decode(jpeg, as: .rgb, minimumWidth: width)
        let small = resample(decoded, width: min(width, decoded.width))
        return try encoder.encode(small)
    }

    /// Area-averaging resample (each output pixel is the mean of the source
    /// pixels it covers), which avoids the aliasing of point sampling.
    static func resample(_ image: DecodedImage, width: Int) -> DecodedImage {
        guard width != image.width else { return image }
        let height = max(1, Int((Double(image.height) * Double(width) / Double(image.width)).rounded()))
        let c = image.channels
        var out = [UInt8](repeating: 0, count: width * height * c)
        let sx = Double(image.width) / Double(width)
        let sy = Double(image.height) / Double(height)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<height {
                    let y0 = Int(Double(oy) * sy), y1 = max(y0 + 1, min(image.height, Int(Double(oy + 1) * sy)))
                    for ox in 0..<width {
                        let x0 = Int(Double(ox) * sx), x1 = max(x0 + 1, min(image.width, Int(Double(ox + 1) * sx)))
                        var sums = (0, 0, 0)
                        for y in y0..<y1 {
                            var i = (y * image.width + x0) * c
                            for _ in x0..<x1 {
                                sums.0 += Int(src[i])
                                if c == 3 { sums.1 += Int(src[i + 1]); sums.2 += Int(src[i + 2]) }
                                i += c
                            }
                        }
                        let n = (y1 - y0) * (x1 - x0)
                        let o = (oy * width + ox) * c
                        dst[o] = UInt8(sums.0 / n)
                        if c == 3 { dst[o + 1] = UInt8(sums.1 / n); dst[o + 2] = UInt8(sums.2 / n) }
                    }
                }
            }
        }
        return DecodedImage(width: width, height: height, channels: c, pixels: out)
    }
}

extension Preview {
    /// A quick RGB thumbnail of a raw frame by point sampling, for live
    /// view: it converts only the output pixels, never the whole frame.
    public static func thumbnail(of frame: RawFrameView, width: Int) throws(ImagingError) -> DecodedImage {
        try frame.check()
        let w = max(1, min(width, frame.width))
        let h = max(1, Int((Double(frame.height) * Double(w) / Double(frame.width)).rounded()))
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let bpl = frame.bytesPerLine
        let src = frame.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for oy in 0..<h {
            let sy = oy * frame.height / h
            for ox in 0..<w {
                let sx = ox * frame.width / w
                var y: Int, cb: Int, cr: Int
                switch frame.format {
                case .yuyv:
                    let p = src + sy * bpl + (sx & ~1) * 2
                    y = Int(p[(sx & 1) * 2]); cb = Int(p[1]); cr = Int(p[3])
                case .nv12:
                    y = Int(src[sy * bpl + sx])
                    let c = src + bpl * frame.height + (sy / 2) * bpl + (sx & ~1)
                    cb = Int(c[0]); cr = Int(c[1])
                case .yu12:
                    y = Int(src[sy * bpl + sx])
                    let cs = (bpl + 1) / 2, ch = (frame.height + 1) / 2
                    let u = src + bpl * frame.height
                    cb = Int(u[(sy / 2) * cs + sx / 2]); cr = Int(u[cs * ch + (sy / 2) * cs + sx / 2])
                case .rgb24:
                    let p = src + sy * bpl + sx * 3
                    let o = (oy * w + ox) * 3
                    out[o] = p[0]; out[o + 1] = p[1]; out[o + 2] = p[2]
                    continue
                }
                // Full-range BT.601 (JFIF), fixed point.
                if frame.range == .limited {
                    y = Int(RangeExpansion.luma[y]); cb = Int(RangeExpansion.chroma[cb]); cr = Int(RangeExpansion.chroma[cr])
                }
                let d = cb - 128, e = cr - 128
                let o = (oy * w + ox) * 3
                out[o] = clamp8(y + (91881 * e) >> 16)
                out[o + 1] = clamp8(y - (22554 * d + 46802 * e) >> 16)
                out[o + 2] = clamp8(y + (116130 * d) >> 16)
            }
        }
        return DecodedImage(width: w, height: h, channels: 3, pixels: out)
    }

    static func clamp8(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v))) }
}
