/// What a DICOM object must say about the JPEG it carries, read from the
/// JPEG's own frame header (SOF) in pure Swift: the bytes come from a camera
/// and may be anything, so every read is bounds-checked and a bad input is an
/// error, never a crash or a hang (the walk only moves forward).
public struct JPEGFrameHeader: Sendable, Equatable {
    public enum Chroma: String, Sendable, Equatable {
        /// One component.
        case monochrome
        /// Three components, all sampled alike.
        case full444 = "4:4:4"
        /// Chroma halved horizontally.
        case sub422 = "4:2:2"
        /// Chroma halved both ways.
        case sub420 = "4:2:0"
        /// Any other chroma sampling (4:4:0, 4:1:1 ...).
        case otherSubsampled = "subsampled"
    }

    public var width: Int
    public var height: Int
    public var components: Int
    public var chroma: Chroma

    public init(width: Int, height: Int, components: Int, chroma: Chroma) {
        self.width = width
        self.height = height
        self.components = components
        self.chroma = chroma
    }

    /// Photometric Interpretation for the JPEG Baseline transfer syntax.
    /// PS3.5 8.2.1 names YBR_FULL_422 for chroma-subsampled baseline
    /// streams, and PS3.3 C.7.6.3.1.2 says that using it for 4:2:0 as well,
    /// "though inaccurate, has proven harmless". Unsubsampled 4:4:4 would be
    /// YBR_FULL by PS3.5, but the VL IODs (both of ours) do not permit
    /// YBR_FULL (PS3.3 C.8.12.1.1.1), so 4:4:4 is refused by `parse(_:)`
    /// with a clear error rather than labelled wrongly; the station's own
    /// encoder and UVC cameras produce 4:2:2 or 4:2:0.
    public var photometricInterpretation: String {
        chroma == .monochrome ? "MONOCHROME2" : "YBR_FULL_422"
    }

    /// Reads SOI, then the segments up to the first scan: a baseline
    /// (SOF0, 8-bit, Huffman) frame header with 1 or 3 components, Huffman
    /// tables (a raw MJPEG frame without DHT is not a complete JPEG) and a
    /// scan; the input must end with EOI.
    public static func parse(_ b: [UInt8]) throws(DicomError) -> JPEGFrameHeader {
        let next = "give the camera's complete JPEG file (the spool's stored image)"
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else {
            throw DicomError(.invalidJPEG, "the image is not a JPEG: it does not start with the SOI marker FF D8", nextStep: next)
        }
        guard b[b.count - 2] == 0xFF, b[b.count - 1] == 0xD9 else {
            throw DicomError(.invalidJPEG, "the JPEG does not end with the EOI marker FF D9: it is truncated or has bytes after its end", nextStep: next)
        }
        var header: JPEGFrameHeader?
        var hasTables = false
        var i = 2
        while true {
            guard i + 1 < b.count else {
                throw DicomError(.invalidJPEG, "the JPEG ends before its first scan (SOS)", nextStep: next)
            }
            guard b[i] == 0xFF else {
                throw DicomError(.invalidJPEG, "the JPEG has no marker at byte \(i) where a segment should start", nextStep: next)
            }
            // Fill bytes (FF FF ...) may precede a marker.
            var m = i + 1
            while m < b.count, b[m] == 0xFF { m += 1 }
            guard m < b.count else { throw DicomError(.invalidJPEG, "the JPEG ends inside a marker at byte \(i)", nextStep: next) }
            let marker = b[m]
            if marker == 0x01 || (0xD0...0xD7).contains(marker) {  // TEM, RSTn: no length
                i = m + 1
                continue
            }
            guard marker != 0x00, marker != 0xD8, marker != 0xD9 else {
                throw DicomError(.invalidJPEG, String(format: "the JPEG has marker FF %02X at byte %d before its first scan", marker, m - 1), nextStep: next)
            }
            guard m + 2 < b.count else { throw DicomError(.invalidJPEG, "the JPEG ends inside the length of a segment at byte \(m - 1)", nextStep: next) }
            let length = Int(b[m + 1]) << 8 | Int(b[m + 2])
            let end = m + 1 + length  // one past the segment
            guard length >= 2, end <= b.count - 2 else {
                throw DicomError(.invalidJPEG, String(format: "the JPEG segment FF %02X at byte %d has length %d, past the end of the file", marker, m - 1, length), nextStep: next)
            }
            let body = m + 3  // first byte after the length
            switch marker {
            case 0xC0:
                guard header == nil else { throw DicomError(.invalidJPEG, "the JPEG has two frame headers", nextStep: next) }
                header = try frame(b, body: body, length: length)
            case 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
                let kind = [0xC1: "extended sequential", 0xC2: "progressive", 0xC3: "lossless", 0xC9: "arithmetic-coded",
                            0xCA: "arithmetic-coded progressive", 0xCB: "arithmetic-coded lossless"][Int(marker)] ?? "hierarchical"
                throw DicomError(.unsupportedJPEG, String(format: "the JPEG is %@ (SOF marker FF %02X), not baseline: the JPEG Baseline transfer syntax cannot carry it unchanged", kind, marker),
                                 nextStep: "set the camera to baseline JPEG (MJPEG), or let the station encode the frames")
            case 0xC4:
                hasTables = true
            case 0xDA:
                guard let header else { throw DicomError(.invalidJPEG, "the JPEG has a scan (SOS) before any frame header (SOF)", nextStep: next) }
                guard hasTables else {
                    throw DicomError(.invalidJPEG, "the JPEG has no Huffman tables (DHT) before its scan, as raw MJPEG frames do",
                                     nextStep: "give the stored image, in which the station has inserted the standard tables")
                }
                return header
            default:
                break  // APPn, COM, DQT, DRI, ...
            }
            i = end
        }
    }

    private static func frame(_ b: [UInt8], body: Int, length: Int) throws(DicomError) -> JPEGFrameHeader {
        let next = "give the camera's complete JPEG file (the spool's stored image)"
        guard length >= 8 else { throw DicomError(.invalidJPEG, "the JPEG frame header is \(length) bytes long, shorter than 8", nextStep: next) }
        let precision = Int(b[body])
        let height = Int(b[body + 1]) << 8 | Int(b[body + 2])
        let width = Int(b[body + 3]) << 8 | Int(b[body + 4])
        let n = Int(b[body + 5])
        guard precision == 8 else {
            throw DicomError(.unsupportedJPEG, "the JPEG has \(precision)-bit samples; JPEG Baseline carries 8-bit samples only", nextStep: "use an 8-bit camera mode")
        }
        guard n == 1 || n == 3 else {
            throw DicomError(.unsupportedJPEG, "the JPEG has \(n) colour components; the station files greyscale (1) or colour (3) images",
                             nextStep: "use a YCbCr or greyscale camera mode")
        }
        guard length == 8 + 3 * n else {
            throw DicomError(.invalidJPEG, "the JPEG frame header is \(length) bytes long; \(n) components need \(8 + 3 * n)", nextStep: next)
        }
        guard width > 0, height > 0 else {
            throw DicomError(.unsupportedJPEG, "the JPEG frame header gives a size of \(width)×\(height); a height set later (DNL) or a zero size is not supported",
                             nextStep: next)
        }
        var sampling: [(h: Int, v: Int)] = []
        for c in 0..<n {
            let hv = b[body + 6 + 3 * c + 1]
            let h = Int(hv >> 4), v = Int(hv & 0x0F)
            guard (1...4).contains(h), (1...4).contains(v) else {
                throw DicomError(.invalidJPEG, "the JPEG component \(c + 1) has sampling factors \(h)×\(v), outside 1...4", nextStep: next)
            }
            sampling.append((h, v))
        }
        let chroma: Chroma
        if n == 1 {
            chroma = .monochrome
        } else if sampling.allSatisfy({ $0 == sampling[0] }) {
            chroma = .full444
        } else if sampling[1] == (1, 1), sampling[2] == (1, 1), sampling[0] == (2, 1) {
            chroma = .sub422
        } else if sampling[1] == (1, 1), sampling[2] == (1, 1), sampling[0] == (2, 2) {
            chroma = .sub420
        } else {
            chroma = .otherSubsampled
        }
        if chroma == .full444 {
            throw DicomError(.unsupportedJPEG, "the JPEG is colour without chroma subsampling (4:4:4); the VL photographic IODs allow no Photometric Interpretation for it in JPEG Baseline",
                             nextStep: "use the camera's 4:2:2 or 4:2:0 mode (UVC MJPEG is 4:2:2), or let the station encode the frames")
        }
        return JPEGFrameHeader(width: width, height: height, components: n, chroma: chroma)
    }
}
