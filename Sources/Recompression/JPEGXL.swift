import Basics
import CJXL
import CMalloc

/// Why a recompression or a rebuild did not happen.
public enum RecompressionErrorCode: String, FailureCode {
    /// libjxl cannot take this JPEG losslessly (arithmetic coding, an odd layout…).
    case unsupported
    /// The JPEG XL stream or the container around it is damaged or not what it claims.
    case invalid
    /// Beyond the limits this side accepts (pixels, bytes).
    case tooLarge
    /// libjxl itself failed (memory, an internal error).
    case library
}

public typealias RecompressionError = Failure<RecompressionErrorCode>

/// The camera's JPEG as JPEG XL with JPEG reconstruction data, and back:
/// libjxl's lossless JPEG transcoding keeps the JPEG's DCT coefficients and
/// everything needed to write the original file again, bit for bit, in
/// about a fifth fewer bytes. Single-threaded (the output does not depend
/// on a thread count, and the daemon keeps its other cores), one image at a
/// time, inputs bounded by `Limits`.
public enum JPEGXL {
    public struct Limits: Sendable, Equatable {
        /// Largest image (width × height) either side works on; a 12 MP
        /// dermatoscope image is well inside, a hostile header is not.
        public var maxPixels: Int
        /// Largest JPEG the station recompresses, and the hub rebuilds.
        public var maxBytes: Int

        public init(maxPixels: Int = 50_000_000, maxBytes: Int = 64 << 20) {
            self.maxPixels = maxPixels
            self.maxBytes = maxBytes
        }
    }

    /// libjxl's encoder effort: 7 is its default and what `cjxl` uses.
    public static let effort: Int64 = 7

    /// The version of libjxl this process runs (e.g. "0.7.0").
    public static var libraryVersion: String {
        let v = JxlDecoderVersion()
        return "\(v / 1_000_000).\(v / 1000 % 1000).\(v % 1000)"
    }

    /// Recompresses `jpeg`; nil when the JPEG XL would not be smaller
    /// than `jpeg.count - minSaving` bytes (encoding stops as soon as it
    /// knows). Throws when libjxl cannot take the file.
    public static func recompress(_ jpeg: [UInt8], minSaving: Int = 0, limits: Limits = Limits()) throws(RecompressionError) -> [UInt8]? {
        guard jpeg.count <= limits.maxBytes else {
            throw RecompressionError(.tooLarge, "the JPEG has \(jpeg.count) bytes, more than the \(limits.maxBytes) recompressed")
        }
        guard let header = JPEGDimensions.read(jpeg) else {
            throw RecompressionError(.unsupported, "the file is not a baseline or progressive JPEG with a frame header")
        }
        guard header.width * header.height <= limits.maxPixels else {
            throw RecompressionError(.tooLarge, "the JPEG is \(header.width)×\(header.height), more than \(limits.maxPixels) pixels")
        }
        // libjxl's encoder allocates ~27 MB per megapixel, much of it in
        // blocks glibc keeps after they are freed; the daemon gives it back.
        defer { ts_malloc_trim() }
        guard let encoder = JxlEncoderCreate(nil) else { throw RecompressionError(.library, "libjxl could not create an encoder") }
        defer { JxlEncoderDestroy(encoder) }
        guard JxlEncoderUseContainer(encoder, 1) == JXL_ENC_SUCCESS,
              JxlEncoderStoreJPEGMetadata(encoder, 1) == JXL_ENC_SUCCESS,
              let settings = JxlEncoderFrameSettingsCreate(encoder, nil),
              JxlEncoderFrameSettingsSetOption(settings, JXL_ENC_FRAME_SETTING_EFFORT, effort) == JXL_ENC_SUCCESS
        else { throw RecompressionError(.library, "libjxl refused the encoder settings") }
        let added = jpeg.withUnsafeBufferPointer { JxlEncoderAddJPEGFrame(settings, $0.baseAddress, $0.count) }
        guard added == JXL_ENC_SUCCESS else {
            throw RecompressionError(.unsupported, "libjxl cannot recompress this JPEG losslessly (error \(JxlEncoderGetError(encoder).rawValue))")
        }
        JxlEncoderCloseInput(encoder)
        // Output space up to the size that would still save enough; needing more
        // means the recompression does not pay, so it stops there.
        let budget = jpeg.count - minSaving
        guard budget > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: budget)
        var written = 0
        let status = out.withUnsafeMutableBufferPointer { buffer -> JxlEncoderStatus in
            var next: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            var available = buffer.count
            let status = JxlEncoderProcessOutput(encoder, &next, &available)
            written = buffer.count - available
            return status
        }
        switch status {
        case JXL_ENC_SUCCESS:
            out.removeLast(out.count - written)
            return out
        case JXL_ENC_NEED_MORE_OUTPUT:
            return nil
        default:
            throw RecompressionError(.library, "libjxl failed while encoding (error \(JxlEncoderGetError(encoder).rawValue))")
        }
    }

    /// The original JPEG written again from a JPEG XL stream made by
    /// `recompress`. `maxBytes` bounds the output (the length the sender
    /// declared); a longer JPEG, a stream without reconstruction data, or an
    /// image beyond `limits` is refused.
    public static func reconstruct(_ jxl: [UInt8], maxBytes: Int, limits: Limits = Limits()) throws(RecompressionError) -> [UInt8] {
        guard maxBytes >= 0, maxBytes <= limits.maxBytes else {
            throw RecompressionError(.tooLarge, "a rebuilt JPEG of \(maxBytes) bytes is beyond the \(limits.maxBytes) accepted")
        }
        defer { ts_malloc_trim() }
        guard let decoder = JxlDecoderCreate(nil) else { throw RecompressionError(.library, "libjxl could not create a decoder") }
        defer { JxlDecoderDestroy(decoder) }
        let events = Int32(JXL_DEC_BASIC_INFO.rawValue | JXL_DEC_JPEG_RECONSTRUCTION.rawValue | JXL_DEC_FULL_IMAGE.rawValue)
        guard JxlDecoderSubscribeEvents(decoder, events) == JXL_DEC_SUCCESS else {
            throw RecompressionError(.library, "libjxl refused the decoder settings")
        }
        // One byte more than allowed, so a longer JPEG is seen as such.
        var out = [UInt8](repeating: 0, count: maxBytes + 1)
        return try jxl.withUnsafeBufferPointer { (input) throws(RecompressionError) -> [UInt8] in
            guard JxlDecoderSetInput(decoder, input.baseAddress, input.count) == JXL_DEC_SUCCESS else {
                throw RecompressionError(.library, "libjxl refused the input")
            }
            JxlDecoderCloseInput(decoder)
            let written = try out.withUnsafeMutableBufferPointer { (output) throws(RecompressionError) -> Int in
                var jpegSet = false
                while true {
                    let status = JxlDecoderProcessInput(decoder)
                    switch status {
                    case JXL_DEC_BASIC_INFO:
                        var info = JxlBasicInfo()
                        guard JxlDecoderGetBasicInfo(decoder, &info) == JXL_DEC_SUCCESS else {
                            throw RecompressionError(.invalid, "the JPEG XL stream's header cannot be read")
                        }
                        guard Int(info.xsize) * Int(info.ysize) <= limits.maxPixels else {
                            throw RecompressionError(.tooLarge, "the JPEG XL stream is \(info.xsize)×\(info.ysize), more than \(limits.maxPixels) pixels")
                        }
                    case JXL_DEC_JPEG_RECONSTRUCTION:
                        guard JxlDecoderSetJPEGBuffer(decoder, output.baseAddress, output.count) == JXL_DEC_SUCCESS else {
                            throw RecompressionError(.library, "libjxl refused the output buffer")
                        }
                        jpegSet = true
                    case JXL_DEC_JPEG_NEED_MORE_OUTPUT:
                        throw RecompressionError(.invalid, "the rebuilt JPEG is longer than the \(maxBytes) bytes declared")
                    case JXL_DEC_NEED_IMAGE_OUT_BUFFER:
                        throw RecompressionError(.invalid, "the JPEG XL stream carries no JPEG reconstruction data, so the original file cannot be rebuilt")
                    case JXL_DEC_FULL_IMAGE:
                        guard jpegSet else {
                            throw RecompressionError(.invalid, "the JPEG XL stream carries no JPEG reconstruction data, so the original file cannot be rebuilt")
                        }
                        let left = JxlDecoderReleaseJPEGBuffer(decoder)
                        return output.count - left
                    case JXL_DEC_NEED_MORE_INPUT:
                        throw RecompressionError(.invalid, "the JPEG XL stream ends early")
                    case JXL_DEC_SUCCESS:
                        throw RecompressionError(.invalid, "the JPEG XL stream holds no image")
                    case JXL_DEC_ERROR:
                        throw RecompressionError(.invalid, "the JPEG XL stream is damaged (libjxl could not decode it)")
                    default:
                        throw RecompressionError(.invalid, "the JPEG XL stream asks for something a JPEG rebuild does not do (event \(status.rawValue))")
                    }
                }
            }
            guard written <= maxBytes else {
                throw RecompressionError(.invalid, "the rebuilt JPEG is longer than the \(maxBytes) bytes declared")
            }
            out.removeLast(out.count - written)
            return out
        }
    }
}

/// A JPEG's size from its first frame header (SOF0…SOF15 except DHT/JPG/DAC),
/// read before libjxl sees the file so an absurd size is refused cheaply.
enum JPEGDimensions {
    static func read(_ b: [UInt8]) -> (width: Int, height: Int)? {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var i = 2
        while i + 4 <= b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2 else { return nil }
            if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                guard i + 9 <= b.count else { return nil }
                let height = Int(b[i + 5]) << 8 | Int(b[i + 6])
                let width = Int(b[i + 7]) << 8 | Int(b[i + 8])
                return (width, height)
            }
            if marker == 0xDA || marker == 0xD9 { return nil }
            i += 2 + length
        }
        return nil
    }
}
