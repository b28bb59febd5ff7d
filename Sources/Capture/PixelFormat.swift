import Config
import Imaging

/// A V4L2 pixel format code (four ASCII characters packed little-endian).
public struct FourCC: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ s: String) {
        var v: UInt32 = 0
        for (i, b) in s.utf8.prefix(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        rawValue = v
    }

    public var description: String {
        let bytes = (0..<4).map { UInt8((rawValue >> (8 * UInt32($0))) & 0xFF) }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    public init(from decoder: any Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public static let mjpeg = FourCC("MJPG")
    public static let jpeg = FourCC("JPEG")
    public static let yuyv = FourCC("YUYV")
    public static let nv12 = FourCC("NV12")
    public static let yu12 = FourCC("YU12")

    /// True for formats whose frames are already JPEG.
    public var isJPEG: Bool { self == .mjpeg || self == .jpeg }

    /// The encoder's layout for a raw format we can encode.
    public var rawPixelFormat: RawPixelFormat? {
        switch self {
        case .yuyv: .yuyv
        case .nv12: .nv12
        case .yu12: .yu12
        default: nil
        }
    }

    /// Formats the station can store, in `auto` preference order: the
    /// camera's own JPEG first (USB 2.0 cannot carry raw 1080p at useful
    /// rates), then the raw layouts the encoder takes.
    public static let usable: [FourCC] = [.mjpeg, .jpeg, .yuyv, .nv12, .yu12]
}

/// Which format the user asked for.
public enum FormatPreference: String, Sendable, Equatable, CaseIterable, Codable {
    case auto, mjpeg, yuyv, nv12, yu12

    public init(_ choice: StationConfig.PixelFormatChoice) {
        switch choice {
        case .auto: self = .auto
        case .mjpeg: self = .mjpeg
        case .yuyv: self = .yuyv
        }
    }

    /// Candidate formats, best first.
    public var candidates: [FourCC] {
        switch self {
        case .auto: FourCC.usable
        case .mjpeg: [.mjpeg, .jpeg]
        case .yuyv: [.yuyv]
        case .nv12: [.nv12]
        case .yu12: [.yu12]
        }
    }
}
