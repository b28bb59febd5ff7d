import Basics

public enum ImagingErrorCode: String, FailureCode {
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

/// Every failure of the Imaging module: what went wrong, in words a
/// technician can read, and what to do about it when there is something to do.
public typealias ImagingError = Failure<ImagingErrorCode>
