import Basics

/// What the station sends in place of a file whose JPEG it recompressed,
/// and how the hub writes the original file again.
///
/// The file is the camera's JPEG, or a DICOM object with the JPEG as one
/// contiguous fragment inside: `prefix + JPEG + suffix`. The body is
///
///     "TSJX"  version (1 byte, 1)
///     prefix length, JPEG XL length, suffix length (3 × UInt32, big-endian)
///     prefix, JPEG XL stream, suffix
///
/// and the hub's rebuild is `prefix + reconstruct(JPEG XL) + suffix`,
/// accepted only when its length and SHA-256 are the original's.
///
/// The wire: the hub advertises `Telestation-Transport: jxl` in its
/// OPTIONS answer; an upload made this way carries the metadata
/// `transport jxl`, `original_length` (bytes of the original file) and
/// `transport_sha256` (of the body), while `sha256` stays the original
/// file's, which is what the hub stores and checks.
public struct RecompressedFile: Sendable, Equatable {
    public var prefix: [UInt8]
    public var jxl: [UInt8]
    public var suffix: [UInt8]

    public static let magic: [UInt8] = Array("TSJX".utf8)
    public static let version: UInt8 = 1
    static let headerSize = 4 + 1 + 3 * 4

    /// The OPTIONS header and its value, and the metadata keys.
    public static let capabilityHeader = "Telestation-Transport"
    public static let capability = "jxl"
    public static let transportKey = "transport"
    public static let originalLengthKey = "original_length"
    public static let transportSHA256Key = "transport_sha256"

    public init(prefix: [UInt8], jxl: [UInt8], suffix: [UInt8]) {
        self.prefix = prefix
        self.jxl = jxl
        self.suffix = suffix
    }

    /// The body as sent.
    public func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(Self.headerSize + prefix.count + jxl.count + suffix.count)
        out.append(Self.version)
        for n in [prefix.count, jxl.count, suffix.count] {
            let v = UInt32(n)
            out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        return out + prefix + jxl + suffix
    }

    /// Reads a body; every length is checked against what is there.
    public static func parse(_ bytes: [UInt8]) throws(RecompressionError) -> RecompressedFile {
        guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else {
            throw RecompressionError(.invalid, "the upload says it is a recompressed file but does not start with \"TSJX\"")
        }
        guard bytes[4] == version else {
            throw RecompressionError(.invalid, "the recompressed file has version \(bytes[4]); this hub reads version \(version)",
                                     nextStep: "update the hub to the station's release")
        }
        func length(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        let p = length(5), j = length(9), s = length(13)
        guard headerSize + p + j + s == bytes.count else {
            throw RecompressionError(.invalid, "the recompressed file's sections (\(p) + \(j) + \(s) bytes) do not add up to its \(bytes.count - headerSize) bytes after the header")
        }
        let a = headerSize, b = a + p, c = b + j
        return RecompressedFile(prefix: Array(bytes[a..<b]), jxl: Array(bytes[b..<c]), suffix: Array(bytes[c...]))
    }

    /// The original file again; refused unless it has `length` bytes.
    /// The caller checks the SHA-256.
    public func rebuild(length: Int, limits: JPEGXL.Limits = JPEGXL.Limits()) throws(RecompressionError) -> [UInt8] {
        let room = length - prefix.count - suffix.count
        guard room > 0 else {
            throw RecompressionError(.invalid, "the declared original length \(length) leaves no room for a JPEG between \(prefix.count) + \(suffix.count) bytes")
        }
        let jpeg = try JPEGXL.reconstruct(jxl, maxBytes: min(room, limits.maxBytes), limits: limits)
        guard jpeg.count == room else {
            throw RecompressionError(.invalid, "the rebuilt JPEG has \(jpeg.count) bytes, the original had \(room)")
        }
        return prefix + jpeg + suffix
    }

    /// The station's side: the file with its JPEG at `jpegRange` as a
    /// body that saves at least `minSaving` of the file's bytes (nil when
    /// it does not), checked by rebuilding it here before anything is
    /// sent: a body this station could not turn back into the file is
    /// never sent.
    public static func make(file: [UInt8], jpegRange: Range<Int>, minSaving: Double = 0.03,
                            limits: JPEGXL.Limits = JPEGXL.Limits()) throws(RecompressionError) -> RecompressedFile? {
        guard jpegRange.lowerBound >= 0, jpegRange.upperBound <= file.count, !jpegRange.isEmpty else {
            throw RecompressionError(.invalid, "the JPEG's place \(jpegRange) is outside the \(file.count)-byte file")
        }
        let jpeg = Array(file[jpegRange])
        let wanted = Int((Double(file.count) * minSaving).rounded(.up)) + headerSize
        guard let jxl = try JPEGXL.recompress(jpeg, minSaving: wanted, limits: limits) else { return nil }
        let made = RecompressedFile(prefix: Array(file[..<jpegRange.lowerBound]), jxl: jxl, suffix: Array(file[jpegRange.upperBound...]))
        guard try made.rebuild(length: file.count, limits: limits) == file else {
            throw RecompressionError(.library, "libjxl's rebuild of its own recompression differs from the original; the file is sent as it is")
        }
        return made
    }
}
