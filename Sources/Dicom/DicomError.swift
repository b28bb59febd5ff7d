import Basics

public enum DicomErrorCode: String, FailureCode {
    /// The image bytes are not a complete JPEG (no SOI, a segment running
    /// past the end, no frame header, no scan, no EOI).
    case invalidJPEG
    /// A JPEG that the JPEG Baseline transfer syntax cannot carry unchanged
    /// (progressive, lossless, 12-bit, arithmetic coding, CMYK).
    case unsupportedJPEG
    /// A value of the context the object cannot hold: an unknown body site,
    /// a birth date that is not YYYYMMDD, a patient id longer than DICOM allows.
    case invalidContext
}

/// Every failure of the Dicom module: what was wrong and what to do.
public typealias DicomError = Failure<DicomErrorCode>
