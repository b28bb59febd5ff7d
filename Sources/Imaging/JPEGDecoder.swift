import CTurboJPEG
import Foundation

/// A decoded image: tightly packed rows of `channels` bytes per pixel.
public struct DecodedImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// 3 (RGB) or 1 (greyscale).
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The pixel at (x, y) as RGB (grey is repeated).
    public func rgb(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * channels
        return channels == 1 ? (pixels[i], pixels[i], pixels[i]) : (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// Decompresses JPEGs with TurboJPEG, optionally with its fast DCT-domain
/// downscaling (1/2, 1/4, 1/8...), for previews, metrics and tests.
/// Not thread-safe; use one per thread.
public final class JPEGDecoder {
    public enum Output: Sendable { case rgb, gray }

    private let handle: tjhandle

    /// Calls `tjInitDecompress`.
    public init() throws(ImagingError) {
        guard let h = tjInitDecompress() else {
            throw ImagingError(.decodeFailed, "tjInitDecompress failed: \(String(cString: tjGetErrorStr2(nil)))")
        }
        handle = h
    }

    deinit { tjDestroy(handle) }

    /// Decodes `jpeg`. With `minimumWidth`, picks the smallest TurboJPEG
    /// scaling factor whose result is still at least that wide.
    /// Calls `tjDecompressHeader3` and `tjDecompress2`.
    public func decode(_ jpeg: Data, as output: Output = .rgb, minimumWidth: Int? = nil) throws(ImagingError) -> DecodedImage {
        var w: Int32 = 0, h: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
        let headerRC = jpeg.withUnsafeBytes { raw in
            tjDecompressHeader3(handle, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt(raw.count), &w, &h, &subsamp, &colorspace)
        }
        guard headerRC == 0 else {
            throw ImagingError(.decodeFailed, "TurboJPEG cannot read the JPEG header: \(String(cString: tjGetErrorStr2(handle)))")
        }
        var (sw, sh) = (Int(w), Int(h))
        if let minimumWidth, minimumWidth < sw {
            (sw, sh) = Self.scaledSize(width: Int(w), height: Int(h), minimumWidth: minimumWidth)
        }
        let channels = output == .rgb ? 3 : 1
        var pixels = [UInt8](repeating: 0, count: sw * sh * channels)
        let pf = output == .rgb ? TJPF_RGB : TJPF_GRAY
        let rc = jpeg.withUnsafeBytes { raw in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt(raw.count), dst.baseAddress,
                              Int32(sw), Int32(sw * channels), Int32(sh), Int32(pf.rawValue), 0)
            }
        }
        // Corrupt-data warnings (rc -1 with TJERR_WARNING) still give an image,
        // but a still must be intact.
        guard rc == 0 else {
            throw ImagingError(.decodeFailed, "TurboJPEG cannot decode the JPEG: \(String(cString: tjGetErrorStr2(handle)))",
                               nextStep: "the image is damaged; capture again")
        }
        return DecodedImage(width: sw, height: sh, channels: channels, pixels: pixels)
    }

    /// Smallest TurboJPEG scaled size (factors up to 1/1) at least `minimumWidth` wide.
    /// Calls `tjGetScalingFactors`.
    static func scaledSize(width: Int, height: Int, minimumWidth: Int) -> (Int, Int) {
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count) else { return (width, height) }
        var best = (width, height)
        for i in 0..<Int(count) {
            let f = factors[i]
            let num = Int(f.num), denom = Int(f.denom)
            guard num <= denom else { continue }
            let sw = (width * num + denom - 1) / denom
            let sh = (height * num + denom - 1) / denom
            if sw >= minimumWidth, sw < best.0 { best = (sw, sh) }
        }
        return best
    }
}
