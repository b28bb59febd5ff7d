import Foundation

/// The File Meta Information of a DICOM Part 10 file (PS3.10 §7.1): the
/// 128-byte preamble, `DICM`, then group 0002 in Explicit VR Little Endian.
/// The hub reads only this header: it is enough to know that a file claiming
/// to be DICOM is one, and which instance it is, so that the PACS's answer can
/// be matched to it. The data set itself is the PACS's to parse.
public struct DicomPart10: Sendable, Equatable {
    /// (0002,0002) Media Storage SOP Class UID.
    public var sopClassUID: String
    /// (0002,0003) Media Storage SOP Instance UID.
    public var sopInstanceUID: String
    /// (0002,0010) Transfer Syntax UID.
    public var transferSyntaxUID: String

    /// Bytes the meta header may take at most; real ones are a few hundred.
    public static let maxHeader = 64 * 1024

    /// The meta header of `bytes` (the start of a file, at least its meta
    /// header), or why it is not a DICOM Part 10 file, as a sentence for the operator.
    public static func parse(_ bytes: [UInt8]) -> Result<DicomPart10, Invalid> {
        guard bytes.count >= 132 + 12 else {
            return .failure(Invalid("the file is \(bytes.count) bytes, too short for a DICOM Part 10 header"))
        }
        guard bytes[128..<132].elementsEqual(Array("DICM".utf8)) else {
            return .failure(Invalid("no DICM marker at byte 128: not a DICOM Part 10 file (a bare data set or another format)"))
        }
        var elements: [UInt16: String] = [:]
        var offset = 132
        var end: Int?
        while offset + 8 <= bytes.count {
            let group = u16(bytes, offset)
            guard group == 0x0002 else { break }
            let element = u16(bytes, offset + 2)
            let vr = String(decoding: bytes[(offset + 4)..<(offset + 6)], as: UTF8.self)
            guard vr.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else {
                return .failure(Invalid("the meta header element (0002,\(hex(element))) has no explicit VR"))
            }
            var length: Int
            var valueStart: Int
            // PS3.5 §7.1.2: these VRs have two reserved bytes and a 32-bit length.
            if ["OB", "OD", "OF", "OL", "OW", "SQ", "UC", "UN", "UR", "UT", "OV", "SV", "UV"].contains(vr) {
                guard offset + 12 <= bytes.count else { break }
                length = Int(u32(bytes, offset + 8))
                valueStart = offset + 12
            } else {
                length = Int(u16(bytes, offset + 6))
                valueStart = offset + 8
            }
            guard length != 0xFFFF_FFFF, valueStart + length <= bytes.count else {
                return .failure(Invalid("the meta header element (0002,\(hex(element))) runs past the end of the header"))
            }
            let value = bytes[valueStart..<(valueStart + length)]
            if element == 0x0000, length == 4 {
                end = valueStart + 4 + Int(u32(bytes, valueStart))
            } else if vr == "UI" {
                // UIDs are padded with NUL to an even length.
                elements[element] = String(decoding: value, as: UTF8.self)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
            }
            offset = valueStart + length
            if let end, offset >= end { break }
        }
        guard let sopClass = elements[0x0002], !sopClass.isEmpty else {
            return .failure(Invalid("the meta header has no Media Storage SOP Class UID (0002,0002)"))
        }
        guard let sop = elements[0x0003], !sop.isEmpty else {
            return .failure(Invalid("the meta header has no Media Storage SOP Instance UID (0002,0003)"))
        }
        guard let ts = elements[0x0010], !ts.isEmpty else {
            return .failure(Invalid("the meta header has no Transfer Syntax UID (0002,0010)"))
        }
        for uid in [sopClass, sop, ts] where !isUID(uid) {
            return .failure(Invalid("\"\(uid)\" in the meta header is not a UID (digits and dots, at most 64 characters)"))
        }
        guard offset + 8 <= bytes.count else {
            return .failure(Invalid("the file ends after its meta header: there is no data set"))
        }
        return .success(DicomPart10(sopClassUID: sopClass, sopInstanceUID: sop, transferSyntaxUID: ts))
    }

    /// Reads the start of the file at `path` and parses it.
    public static func read(path: String) -> Result<DicomPart10, Invalid> {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(Invalid("cannot open \(path)"))
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxHeader)) ?? Data()
        return parse(Array(data))
    }

    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    static func isUID(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.allSatisfy { $0 == "." || ($0.isASCII && $0.isNumber) }
    }

    private static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
    private static func hex(_ v: UInt16) -> String { String(format: "%04X", v) }
}
