/// Every failure of the Imaging module: what went wrong, in words a
/// technician can read, and what to do about it when there is something to do.
public struct ImagingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable, Codable {
        /// The bytes are not a JPEG we accept (no SOI/EOI, no frame header, truncated...).
        case invalidJPEG
        /// A JPEG we can parse but do not accept (12-bit, CMYK, ...).
        case unsupportedJPEG
        /// A raw frame whose size or layout does not match its description.
        case invalidFrame
        /// libjpeg-turbo refused to compress.
        case encodeFailed
        /// libjpeg-turbo refused to decompress.
        case decodeFailed
    }

    public var code: Code
    public var message: String
    public var nextStep: String?

    public init(_ code: Code, _ message: String, nextStep: String? = nil) {
        self.code = code
        self.message = message
        self.nextStep = nextStep
    }

    public var description: String {
        nextStep.map { "\(message) — \($0)" } ?? message
    }
}
