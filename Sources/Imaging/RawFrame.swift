/// Uncompressed pixel layouts the encoder takes.
public enum RawPixelFormat: String, Sendable, Equatable, Codable, CaseIterable {
    /// Packed 4:2:2, Y0 U Y1 V (V4L2 `YUYV`).
    case yuyv
    /// 4:2:0 with a Y plane and one interleaved U/V plane (V4L2 `NV12`).
    case nv12
    /// 4:2:0 with Y, U and V planes one after another (V4L2 `YU12`, I420).
    case yu12
    /// Packed 8-bit R G B.
    case rgb24

    /// The smallest `bytesPerLine` a row of `width` pixels needs (of the luma plane for planar formats).
    public func minimumBytesPerLine(width: Int) -> Int {
        switch self {
        case .yuyv: width * 2
        case .nv12, .yu12: width
        case .rgb24: width * 3
        }
    }

    /// Bytes a whole frame needs with rows `bytesPerLine` apart.
    public func frameSize(width: Int, height: Int, bytesPerLine: Int) -> Int {
        switch self {
        case .yuyv, .rgb24: bytesPerLine * height
        case .nv12: bytesPerLine * height + bytesPerLine * ((height + 1) / 2)
        case .yu12: bytesPerLine * height + 2 * ((bytesPerLine + 1) / 2) * ((height + 1) / 2)
        }
    }
}

/// How a YCbCr frame uses the 8-bit range. JPEG (JFIF) is full range;
/// most V4L2 drivers deliver studio-swing "limited" range (Y 16...235,
/// Cb/Cr 16...240), which would look washed out if stored unconverted.
public enum YCbCrRange: String, Sendable, Equatable, Codable {
    case full, limited
}

/// A borrowed view of one uncompressed frame, valid only while the memory
/// it points into (typically a driver's mmap buffer) is.
public struct RawFrameView {
    public var format: RawPixelFormat
    public var width: Int
    public var height: Int
    public var bytesPerLine: Int
    public var bytes: UnsafeRawBufferPointer
    /// Ignored for RGB.
    public var range: YCbCrRange

    public init(format: RawPixelFormat, width: Int, height: Int, bytesPerLine: Int = 0, range: YCbCrRange = .full,
                bytes: UnsafeRawBufferPointer) {
        self.range = range
        self.format = format
        self.width = width
        self.height = height
        self.bytesPerLine = bytesPerLine > 0 ? bytesPerLine : format.minimumBytesPerLine(width: width)
        self.bytes = bytes
    }

    /// Refuses views whose buffer is smaller than their geometry says.
    public func check() throws(ImagingError) {
        guard width > 0, height > 0 else {
            throw ImagingError(.invalidFrame, "frame size \(width)×\(height) is empty")
        }
        if format != .rgb24, width % 2 != 0 {
            throw ImagingError(.invalidFrame, "\(format.rawValue) frame width \(width) is odd; chroma subsampling needs an even width")
        }
        guard bytesPerLine >= format.minimumBytesPerLine(width: width) else {
            throw ImagingError(.invalidFrame, "\(format.rawValue) frame of width \(width) cannot have rows of only \(bytesPerLine) bytes")
        }
        let need = format.frameSize(width: width, height: height, bytesPerLine: bytesPerLine)
        guard bytes.count >= need else {
            throw ImagingError(.invalidFrame, "\(format.rawValue) \(width)×\(height) frame needs \(need) bytes but only \(bytes.count) arrived",
                               nextStep: "the driver delivered a short buffer; capture again")
        }
    }
}
