import Crypto

/// UIDs without a registered root: every UID the station makes is
/// `2.25.<decimal>` (ISO/IEC 9834-8 and ITU-T X.667, which DICOM allows in
/// PS3.5 B.2), the decimal being a 128-bit UUID made from a name as RFC 9562
/// makes version 8 UUIDs from SHA-256: the first 16 bytes of SHA-256 of a
/// labelled string, with the version nibble set to 8 and the variant bits to
/// 10. The same name always gives the same UID, so a retried upload files
/// the same instance again instead of a duplicate, and no UID registry or
/// counter has to survive a power cut.
///
/// The names (each part length-prefixed, so that parts cannot run together):
/// - study: `telestation/study`, station id, case id — one study per case;
/// - series: `telestation/series`, station id, case id, image type,
///   manufacturer, model — one series per device and image type;
/// - instance: `telestation/instance`, station id, case id, the image's
///   SHA-256 — the same JPEG in the same case is the same instance;
/// - the Implementation Class UID: `telestation/implementation-class`.
enum DicomUID {
    static func make(_ label: String, _ parts: [String]) -> String {
        var name = "telestation/\(label)"
        for p in parts { name += "\u{0}\(p.utf8.count):\(p)" }
        var bytes = Array(SHA256.hash(data: Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // variant 10
        return "2.25." + decimal(bytes)
    }

    /// A big-endian unsigned integer in decimal, without leading zeros
    /// (PS3.5 9.1: no component may have a leading zero).
    static func decimal(_ bigEndian: [UInt8]) -> String {
        var limbs = bigEndian  // base-256 digits, most significant first
        var digits: [UInt8] = []
        while limbs.contains(where: { $0 != 0 }) {
            var remainder = 0
            for k in limbs.indices {
                let v = remainder << 8 | Int(limbs[k])
                limbs[k] = UInt8(v / 10)
                remainder = v % 10
            }
            digits.append(UInt8(remainder) + 0x30)
        }
        return digits.isEmpty ? "0" : String(decoding: digits.reversed(), as: UTF8.self)
    }

    static let implementationClass = make("implementation-class", [])
}
