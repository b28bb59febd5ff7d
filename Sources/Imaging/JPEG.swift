import Foundation

/// What a JPEG's headers say about the image.
public struct JPEGInfo: Sendable, Equatable, Codable {
    public var width: Int
    public var height: Int
    /// 1 (greyscale) or 3 (YCbCr colour).
    public var components: Int
    /// Bits per sample; only 8 is accepted.
    public var precision: Int
    /// Whether the file carries its own Huffman tables (UVC MJPEG often does not).
    public var hasHuffmanTables: Bool
    /// Whether the frame header is progressive (SOF2).
    public var progressive: Bool
    /// Offset of the frame header (SOFn marker), where missing tables go.
    public var frameHeaderOffset: Int
    /// Bytes up to and including EOI; cameras sometimes pad frames after it.
    public var length: Int

    /// Bits per pixel of the decoded image: 24 for colour, 8 for greyscale.
    public var bitsPerPixel: Int { components * precision }
}

public enum JPEG {
    /// Checks that `data` is a complete baseline/progressive 8-bit JPEG
    /// (SOI first, a frame header, a scan, EOI last) and reads its header.
    /// Anything else is refused with an `ImagingError` naming the problem.
    public static func validate(_ data: Data) throws(ImagingError) -> JPEGInfo {
        let bytes = [UInt8](data)
        return try validate(bytes: bytes)
    }

    static func validate(bytes: [UInt8]) throws(ImagingError) -> JPEGInfo {
        let n = bytes.count
        func fail(_ why: String) -> ImagingError {
            ImagingError(.invalidJPEG, "not a valid JPEG image: \(why)",
                         nextStep: "the camera sent a damaged frame; capture again")
        }
        guard n >= 4 else { throw fail("only \(n) bytes") }
        guard bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw fail("it does not start with the SOI marker (FF D8)") }

        var i = 2
        var frame: (offset: Int, precision: Int, height: Int, width: Int, components: Int, progressive: Bool)?
        var hasDHT = false
        var sawScan = false
        while i < n {
            // Markers may be preceded by any number of 0xFF fill bytes.
            guard bytes[i] == 0xFF else { throw fail("expected a marker at byte \(i), found \(hex(bytes[i]))") }
            while i < n, bytes[i] == 0xFF { i += 1 }
            guard i < n else { throw fail("truncated after a marker prefix") }
            let marker = bytes[i]
            let markerOffset = i - 1
            i += 1
            switch marker {
            case 0xD8: throw fail("a second SOI marker at byte \(markerOffset)")
            case 0xD9: throw fail("EOI at byte \(markerOffset) before any scan")
            case 0x01, 0xD0...0xD7: continue  // standalone markers
            default: break
            }
            guard i + 2 <= n else { throw fail("segment header truncated at byte \(markerOffset)") }
            let len = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            guard len >= 2, i + len <= n else { throw fail("segment \(hex(marker)) at byte \(markerOffset) runs past the end") }
            let body = i + 2
            switch marker {
            case 0xC4:
                hasDHT = true
            case 0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
                guard frame == nil else { throw fail("more than one frame header") }
                guard len >= 8 else { throw fail("frame header too short") }
                let precision = Int(bytes[body])
                let height = Int(bytes[body + 1]) << 8 | Int(bytes[body + 2])
                let width = Int(bytes[body + 3]) << 8 | Int(bytes[body + 4])
                let comps = Int(bytes[body + 5])
                guard len >= 8 + 3 * comps else { throw fail("frame header shorter than its \(comps) components") }
                if ![0xC0, 0xC1, 0xC2].contains(marker) {
                    throw ImagingError(.unsupportedJPEG, "unsupported JPEG coding (frame marker \(hex(marker))): only baseline and progressive Huffman JPEG are accepted",
                                       nextStep: "set the camera to MJPEG or YUYV output")
                }
                guard precision == 8 else {
                    throw ImagingError(.unsupportedJPEG, "unsupported JPEG sample precision of \(precision) bits; only 8-bit images are accepted")
                }
                guard width > 0, height > 0 else { throw fail("the frame header gives a size of \(width)×\(height)") }
                guard comps == 1 || comps == 3 else {
                    throw ImagingError(.unsupportedJPEG, "unsupported JPEG with \(comps) colour components; only greyscale (1) or YCbCr (3) are accepted")
                }
                frame = (markerOffset, precision, height, width, comps, marker == 0xC2)
            case 0xDA:
                guard frame != nil else { throw fail("a scan starts before any frame header") }
                sawScan = true
            default:
                break
            }
            i += len
            if sawScan { break }
        }
        guard let frame, sawScan else { throw fail(frame == nil ? "no frame header (SOF)" : "no scan (SOS)") }

        // The entropy-coded data runs to EOI. Cameras may pad a frame with
        // zeros after EOI, so look for the last EOI past the scan.
        var end = n
        while end > i, bytes[end - 1] == 0x00 { end -= 1 }
        guard end - i >= 2, bytes[end - 2] == 0xFF, bytes[end - 1] == 0xD9 else {
            throw fail("it does not end with the EOI marker (FF D9); the frame is truncated")
        }
        return JPEGInfo(width: frame.width, height: frame.height, components: frame.components,
                        precision: frame.precision, hasHuffmanTables: hasDHT, progressive: frame.progressive,
                        frameHeaderOffset: frame.offset, length: end)
    }

    static func hex(_ b: UInt8) -> String {
        let s = String(b, radix: 16, uppercase: true)
        return s.count == 1 ? "0x0" + s : "0x" + s
    }
}
