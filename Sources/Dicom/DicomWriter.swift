/// Explicit VR Little Endian encoding of data elements (PS3.5 7.1.2), by
/// hand: no Swift DICOM library is maintained well enough to depend on, and
/// the station writes one fixed kind of object, so the few dozen lines here
/// are easier to check than a dependency. What the tests hold it to is the
/// field's own tools: dciodvfy, dcmdump and pydicom.
struct DicomElement {
    var group: UInt16
    var element: UInt16
    var vr: String
    /// The value, already padded to even length.
    var value: [UInt8]
    /// Set for Pixel Data: written with undefined length (encapsulated).
    var undefinedLength = false

    var tag: UInt32 { UInt32(group) << 16 | UInt32(element) }
}

enum DicomEncoding {
    /// VRs whose explicit-VR header has two reserved bytes and a 32-bit length (PS3.5 Table 7.1-1).
    static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }

    /// One element, header and value. Tags are written in the order given;
    /// `encode(_:)` sorts.
    static func encode(_ e: DicomElement) -> [UInt8] {
        precondition(e.value.count % 2 == 0, "an odd-length value for (\(e.group),\(e.element))")
        var out = u16(e.group) + u16(e.element) + Array(e.vr.utf8)
        if longVRs.contains(e.vr) {
            out += [0, 0] + u32(e.undefinedLength ? 0xFFFF_FFFF : UInt32(e.value.count))
        } else {
            precondition(e.value.count <= 0xFFFF)
            out += u16(UInt16(e.value.count))
        }
        return out + e.value
    }

    /// A data set: elements in ascending tag order (PS3.5 7.1), as DICOM requires.
    static func encode(_ elements: [DicomElement]) -> [UInt8] {
        elements.sorted { $0.tag < $1.tag }.flatMap { encode($0) }
    }

    // MARK: Values

    /// Text padded to even length with a space (PS3.5 6.2), UI with NUL.
    static func text(_ group: UInt16, _ element: UInt16, _ vr: String, _ s: String) -> DicomElement {
        var v = Array(s.utf8)
        if v.count % 2 == 1 { v.append(vr == "UI" ? 0 : 0x20) }
        return DicomElement(group: group, element: element, vr: vr, value: v)
    }

    static func us(_ group: UInt16, _ element: UInt16, _ v: UInt16) -> DicomElement {
        DicomElement(group: group, element: element, vr: "US", value: u16(v))
    }

    static func ul(_ group: UInt16, _ element: UInt16, _ v: UInt32) -> DicomElement {
        DicomElement(group: group, element: element, vr: "UL", value: u32(v))
    }

    /// A sequence of defined length whose items have defined lengths.
    static func sequence(_ group: UInt16, _ element: UInt16, _ items: [[DicomElement]]) -> DicomElement {
        var v: [UInt8] = []
        for item in items {
            let body = encode(item)
            v += u16(0xFFFE) + u16(0xE000) + u32(UInt32(body.count)) + body
        }
        return DicomElement(group: group, element: element, vr: "SQ", value: v)
    }

    /// Encapsulated Pixel Data (PS3.5 A.4): an empty Basic Offset Table item,
    /// one fragment holding the JPEG unchanged (one 0x00 after its EOI if its
    /// length is odd — decoders stop at EOI), then the sequence delimiter.
    static func encapsulatedPixelData(_ jpeg: [UInt8]) -> DicomElement {
        var fragment = jpeg
        if fragment.count % 2 == 1 { fragment.append(0) }
        var v = u16(0xFFFE) + u16(0xE000) + u32(0)
        v += u16(0xFFFE) + u16(0xE000) + u32(UInt32(fragment.count)) + fragment
        v += u16(0xFFFE) + u16(0xE0DD) + u32(0)
        return DicomElement(group: 0x7FE0, element: 0x0010, vr: "OB", value: v, undefinedLength: true)
    }
}
