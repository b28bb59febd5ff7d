import Crypto
import Foundation

/// Which IOD an image is filed as.
public enum DicomImageType: String, Sendable, Codable, CaseIterable {
    /// Dermoscopic Photography Image (PS3.3 A.32.11), SOP Class
    /// 1.2.840.10008.5.1.4.1.1.77.1.7, modality DMS: a dermatoscope's image.
    case dermoscopic
    /// VL Photographic Image (PS3.3 A.32.4), SOP Class
    /// 1.2.840.10008.5.1.4.1.1.77.1.4, modality XC: a clinical photograph.
    case clinical

    var sopClassUID: String {
        switch self {
        case .dermoscopic: "1.2.840.10008.5.1.4.1.1.77.1.7"
        case .clinical: "1.2.840.10008.5.1.4.1.1.77.1.4"
        }
    }

    var modality: String { self == .dermoscopic ? "DMS" : "XC" }
    /// Series Number: fixed per image type, so a case's dermoscopy and
    /// clinical series sort the same way on every viewer.
    var seriesNumber: String { self == .clinical ? "1" : "2" }
}

/// Everything an object says besides the pixels: the patient (the case),
/// the body site, the capture, the device and the station.
public struct DicomContext: Sendable, Equatable, Codable {
    public var imageType: DicomImageType
    public var stationID: String
    public var stationName: String
    public var institution: String
    /// Patient ID (0010,0020). One study per (stationID, caseID).
    public var caseID: String
    /// "APELLIDOS^Nombres"; nil writes the type 2 Patient's Name empty.
    public var patientName: String?
    /// "F", "M", "O" or nil.
    public var patientSex: String?
    /// YYYYMMDD or nil.
    public var patientBirthDate: String?
    /// Age String (`054Y`) or nil.
    public var patientAge: String?
    /// The kiosk's case: one study for all its images. nil: one study per
    /// (stationID, caseID), as for images enqueued one by one.
    public var caseUID: String?
    /// The kiosk's body site, raw value (`arm_left`, `face`, ...).
    public var site: String
    /// The staff note → Image Comments (0020,4000); may be empty.
    public var note: String
    public var capturedAt: Date
    /// Whether the station's clock was synchronised at capture; nil unknown.
    public var clockSynchronized: Bool?
    public var manufacturer: String?
    public var model: String?
    public var serial: String?
    /// Dermoscopy settings from the device profile; nil unknown.
    public var polarized: Bool?
    public var contact: Bool?
    public var softwareVersion: String
    /// Hex SHA-256 of the JPEG: names the instance UID, so a retry files the same instance.
    public var imageSHA256: String

    public init(imageType: DicomImageType, stationID: String, stationName: String? = nil, institution: String = "",
                caseID: String, patientName: String? = nil, patientSex: String? = nil, patientBirthDate: String? = nil,
                site: String, note: String = "", capturedAt: Date, clockSynchronized: Bool? = nil,
                manufacturer: String? = nil, model: String? = nil, serial: String? = nil,
                polarized: Bool? = nil, contact: Bool? = nil, softwareVersion: String, imageSHA256: String,
                patientAge: String? = nil, caseUID: String? = nil) {
        self.patientAge = patientAge
        self.caseUID = caseUID
        self.imageType = imageType
        self.stationID = stationID
        self.stationName = stationName ?? stationID
        self.institution = institution
        self.caseID = caseID
        self.patientName = patientName
        self.patientSex = patientSex
        self.patientBirthDate = patientBirthDate
        self.site = site
        self.note = note
        self.capturedAt = capturedAt
        self.clockSynchronized = clockSynchronized
        self.manufacturer = manufacturer
        self.model = model
        self.serial = serial
        self.polarized = polarized
        self.contact = contact
        self.softwareVersion = softwareVersion
        self.imageSHA256 = imageSHA256
    }
}

public struct DicomUIDs: Sendable, Equatable {
    public var study, series, instance: String
}

/// A DICOM Part 10 file around a camera's JPEG, written by hand (see
/// `DicomEncoding` for why): File Meta Information in Explicit VR Little
/// Endian, the data set in JPEG Baseline (1.2.840.10008.1.2.4.50) with the
/// JPEG encapsulated unchanged, so the pixels the doctor sees are the ones
/// the camera made. Character set ISO_IR 192 (UTF-8): Spanish and Quechua
/// names go in as they are.
public enum DicomObject {
    public static let transferSyntaxUID = "1.2.840.10008.1.2.4.50"
    /// Implementation Class UID (0002,0012), under the same 2.25 scheme as every other UID.
    public static var implementationClassUID: String { DicomUID.implementationClass }
    public static let implementationVersionName = "TELESTATION"

    /// The body sites `make` knows: the kiosk's, raw values.
    public static var bodySites: [String] { BodySiteCode.table.keys.sorted() }

    /// The object's UIDs; see `DicomUID` for the scheme.
    public static func uids(for c: DicomContext) -> DicomUIDs {
        let study = c.caseUID.map { [c.stationID, c.caseID, $0] } ?? [c.stationID, c.caseID]
        return DicomUIDs(study: DicomUID.make("study", study),
                  series: DicomUID.make("series", study + [c.imageType.rawValue, c.manufacturer ?? "", c.model ?? ""]),
                  instance: DicomUID.make("instance", [c.stationID, c.caseID, c.imageSHA256.lowercased()]))
    }

    /// The whole Part 10 file. Deterministic: the same JPEG and context
    /// give the same bytes (no creation time, no random UID).
    public static func make(jpeg: [UInt8], context c: DicomContext) throws(DicomError) -> [UInt8] {
        let frame = try JPEGFrameHeader.parse(jpeg)
        guard jpeg.count < 0xFFFF_FF00 else {
            throw DicomError(.unsupportedJPEG, "the JPEG has \(jpeg.count) bytes, more than one DICOM fragment holds")
        }
        guard frame.width <= 0xFFFF, frame.height <= 0xFFFF else {
            throw DicomError(.unsupportedJPEG, "the JPEG is \(frame.width)×\(frame.height); DICOM rows and columns stop at 65535")
        }
        let site = try BodySiteCode.lookup(c.site)
        let uids = uids(for: c)
        let dataset = try elements(c, frame: frame, site: site, uids: uids, jpeg: jpeg)
        let body = DicomEncoding.encode(dataset)

        typealias E = DicomEncoding
        var meta: [DicomElement] = [
            DicomElement(group: 2, element: 0x0001, vr: "OB", value: [0, 1]),
            E.text(2, 0x0002, "UI", c.imageType.sopClassUID),
            E.text(2, 0x0003, "UI", uids.instance),
            E.text(2, 0x0010, "UI", transferSyntaxUID),
            E.text(2, 0x0012, "UI", implementationClassUID),
            E.text(2, 0x0013, "SH", implementationVersionName),
        ]
        let metaBody = E.encode(meta)
        meta = [E.ul(2, 0x0000, UInt32(metaBody.count))]
        return [UInt8](repeating: 0, count: 128) + Array("DICM".utf8) + E.encode(meta) + metaBody + body
    }

    // MARK: The data set

    static func elements(_ c: DicomContext, frame: JPEGFrameHeader, site: BodySiteCode, uids: DicomUIDs,
                         jpeg: [UInt8]) throws(DicomError) -> [DicomElement] {
        typealias E = DicomEncoding
        let when = Timestamp(c.capturedAt)
        let dermoscopic = c.imageType == .dermoscopic
        guard !c.caseID.isEmpty else { throw DicomError(.invalidContext, "the case id is empty", nextStep: "give the item's case id") }
        let patientID = try Text.identifier(c.caseID, field: "case id (Patient ID)", limit: 64)
        guard c.imageSHA256.count == 64, c.imageSHA256.allSatisfy(\.isHexDigit) else {
            throw DicomError(.invalidContext, "the image digest \"\(c.imageSHA256)\" is not 64 hex digits", nextStep: "give the SHA-256 of the JPEG in hex")
        }
        if let sex = c.patientSex, !["F", "M", "O"].contains(sex) {
            throw DicomError(.invalidContext, "the patient's sex \"\(sex)\" is not F, M or O", nextStep: "give F, M, O or nothing")
        }
        if let age = c.patientAge, !(age.count == 4 && age.prefix(3).allSatisfy(\.isASCII) && age.prefix(3).allSatisfy(\.isNumber) && "DWMY".contains(age.last!)) {
            throw DicomError(.invalidContext, "the patient's age \"\(age)\" is not an Age String such as 054Y", nextStep: "give three digits and D, W, M or Y, or nothing")
        }
        if let d = c.patientBirthDate, !Text.isDate(d) {
            throw DicomError(.invalidContext, "the birth date \"\(d)\" is not a date written YYYYMMDD", nextStep: "write it as 19840523, or give nothing")
        }

        // Region code, with left/right as a modifier for paired sites.
        var region: [DicomElement] = [
            E.text(0x0008, 0x0100, "SH", site.value), E.text(0x0008, 0x0102, "SH", BodySiteCode.scheme),
            E.text(0x0008, 0x0104, "LO", site.meaning),
        ]
        if let side = site.laterality, let code = BodySiteCode.lateralityCodes[side] {
            region.append(E.sequence(0x0008, 0x2220, [[
                E.text(0x0008, 0x0100, "SH", code.value), E.text(0x0008, 0x0102, "SH", BodySiteCode.scheme),
                E.text(0x0008, 0x0104, "LO", code.meaning),
            ]]))
        }

        // The JPEG's size against the raw 8-bit samples it encodes: (0028,2112).
        let raw = Double(frame.width * frame.height * frame.components)
        let ratio = Text.decimalString(raw / Double(max(1, jpeg.count)))

        var d: [DicomElement] = [
            // SOP Common, General Image, General Study, General Series, General Equipment
            E.text(0x0008, 0x0005, "CS", "ISO_IR 192"),
            E.text(0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY"),
            E.text(0x0008, 0x0016, "UI", c.imageType.sopClassUID),
            E.text(0x0008, 0x0018, "UI", uids.instance),
            E.text(0x0008, 0x0020, "DA", when.date),
            E.text(0x0008, 0x0023, "DA", when.date),
            E.text(0x0008, 0x002A, "DT", when.dateTime),
            E.text(0x0008, 0x0030, "TM", when.time),
            E.text(0x0008, 0x0033, "TM", when.time),
            E.text(0x0008, 0x0050, "SH", ""),
            E.text(0x0008, 0x0060, "CS", c.imageType.modality),
            E.text(0x0008, 0x0070, "LO", Text.lo(c.manufacturer ?? (dermoscopic ? "UNKNOWN" : ""))),
            E.text(0x0008, 0x0080, "LO", Text.lo(c.institution)),
            E.text(0x0008, 0x0090, "PN", ""),
            E.text(0x0008, 0x0201, "SH", "+0000"),
            E.text(0x0008, 0x1010, "SH", Text.limited(c.stationName, 16)),
            E.text(0x0008, 0x1090, "LO", Text.lo(c.model ?? (dermoscopic ? "UNKNOWN" : ""))),
            E.sequence(0x0008, 0x2218, [region]),
            // Patient
            E.text(0x0010, 0x0010, "PN", Text.personName(c.patientName ?? "")),
            E.text(0x0010, 0x0020, "LO", patientID),
            E.text(0x0010, 0x0030, "DA", c.patientBirthDate ?? ""),
            E.text(0x0010, 0x0040, "CS", c.patientSex ?? ""),
        ] + (c.patientAge.map { [E.text(0x0010, 0x1010, "AS", $0)] } ?? []) + [
            E.text(0x0018, 0x1020, "LO", Text.lo(c.softwareVersion)),
            // Study, series, image numbers
            E.text(0x0020, 0x000D, "UI", uids.study),
            E.text(0x0020, 0x000E, "UI", uids.series),
            // Study ID: the case id where it fits (SH, 16 bytes), for DICOMDIR and worklists.
            E.text(0x0020, 0x0010, "SH", patientID.utf8.count <= 16 ? patientID : ""),
            E.text(0x0020, 0x0011, "IS", c.imageType.seriesNumber),
            // Capture time in seconds: instances sort by when they were taken.
            E.text(0x0020, 0x0013, "IS", String(max(1, min(Int(Int32.max), Int(c.capturedAt.timeIntervalSince1970))))),
            E.text(0x0020, 0x0020, "CS", ""),
            // Image Laterality: the series holds both sides of a case, so
            // laterality is the image's (General Series' Laterality is then
            // not required); U for an unpaired site.
            E.text(0x0020, 0x0062, "CS", site.laterality ?? "U"),
            // Image Pixel
            E.us(0x0028, 0x0002, UInt16(frame.components)),
            E.text(0x0028, 0x0004, "CS", frame.photometricInterpretation),
            E.us(0x0028, 0x0010, UInt16(frame.height)),
            E.us(0x0028, 0x0011, UInt16(frame.width)),
            E.us(0x0028, 0x0100, 8), E.us(0x0028, 0x0101, 8), E.us(0x0028, 0x0102, 7), E.us(0x0028, 0x0103, 0),
            E.text(0x0028, 0x2110, "CS", "01"),
            E.text(0x0028, 0x2112, "DS", ratio),
            E.text(0x0028, 0x2114, "CS", "ISO_10918_1"),
            // Acquisition Context: nothing recorded yet (type 2, empty).
            E.sequence(0x0040, 0x0555, []),
            E.encapsulatedPixelData(jpeg),
        ]
        if frame.components == 3 { d.append(E.us(0x0028, 0x0006, 0)) }
        if let serial = c.serial ?? (dermoscopic ? "UNKNOWN" : nil) { d.append(E.text(0x0018, 0x1000, "LO", Text.lo(serial))) }
        if let synced = c.clockSynchronized { d.append(E.text(0x0018, 0x1800, "CS", synced ? "Y" : "N")) }
        if !c.note.isEmpty { d.append(E.text(0x0020, 0x4000, "LT", Text.limited(c.note, 10240, multiline: true))) }
        if dermoscopic {
            // Frame of Reference: a user-optional module of the Dermoscopic
            // IOD that dciodvfy checks all the same. Each photograph has its
            // own spatial frame, so the UID is the instance's, relabelled.
            d.append(E.text(0x0020, 0x0052, "UI", DicomUID.make("frame-of-reference", [c.stationID, c.caseID, c.imageSHA256.lowercased()])))
            d.append(E.text(0x0020, 0x1040, "LO", ""))
            // Dermoscopic Image Module (PS3.3 C.8.12.x): type 2 values empty when the profile does not say.
            d.append(E.text(0x0028, 0x0302, "CS", "NO"))
            d.append(E.text(0x0016, 0x1001, "CS", c.polarized.map { $0 ? "POLARIZED" : "NON_POLARIZED" } ?? ""))
            d.append(E.text(0x0016, 0x1002, "DS", ""))
            d.append(E.text(0x0016, 0x1003, "CS", c.contact.map { $0 ? "CONTACT" : "NON_CONTACT" } ?? ""))
            if c.contact == true { d.append(E.text(0x0016, 0x1004, "CS", "")) }
            d.append(E.text(0x0016, 0x1005, "DS", ""))
        }
        return d
    }
}

/// Dates and times in UTC, as DICOM writes them.
struct Timestamp {
    var date: String      // DA YYYYMMDD
    var time: String      // TM HHMMSS.FFFFFF
    var dateTime: String  // DT YYYYMMDDHHMMSS.FFFFFF+0000

    init(_ d: Date) {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let seconds = d.timeIntervalSince1970.rounded(.down)
        let micro = Int(((d.timeIntervalSince1970 - seconds) * 1_000_000).rounded(.down))
        let p = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: seconds))
        date = String(format: "%04d%02d%02d", p.year!, p.month!, p.day!)
        time = String(format: "%02d%02d%02d.%06d", p.hour!, p.minute!, p.second!, min(999_999, max(0, micro)))
        dateTime = date + time + "+0000"
    }
}

/// Strings as the VRs allow them: no backslash (the value separator) or
/// control characters in single-line text, lengths in bytes no longer than
/// the VR's limit (a limit in characters would let UTF-8 run over it).
enum Text {
    static func limited(_ s: String, _ limit: Int, multiline: Bool = false) -> String {
        var out = ""
        var bytes = 0
        for ch in s {
            var ch = ch
            if !multiline {
                if ch == "\\" { ch = "/" }
                if ch.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { ch = " " }
            } else if ch.unicodeScalars.contains(where: { ($0.value < 0x20 && ![0x0A, 0x0D, 0x09, 0x0C].contains($0.value)) || $0.value == 0x7F }) {
                ch = " "
            }
            let n = String(ch).utf8.count
            if bytes + n > limit { break }
            out.append(ch)
            bytes += n
        }
        // Trailing spaces are padding in DICOM and would not survive a reader.
        while out.last == " " { out.removeLast() }
        return out
    }

    static func lo(_ s: String) -> String { limited(s, 64) }

    /// PN: up to 64 bytes per component group (PS3.5 6.2).
    static func personName(_ s: String) -> String {
        s.split(separator: "=", omittingEmptySubsequences: false).prefix(3).map { limited(String($0), 64) }.joined(separator: "=")
    }

    /// An identifier that must not be cut: too long is an error.
    static func identifier(_ s: String, field: String, limit: Int) throws(DicomError) -> String {
        let cleaned = limited(s, Int.max)
        guard cleaned.utf8.count <= limit else {
            throw DicomError(.invalidContext, "the \(field) \"\(s)\" has \(cleaned.utf8.count) bytes; DICOM holds \(limit)",
                             nextStep: "use a shorter case id")
        }
        guard cleaned == s else {
            throw DicomError(.invalidContext, "the \(field) \"\(s)\" contains a backslash, a control character or trailing spaces, which DICOM cannot hold",
                             nextStep: "use letters, digits and dashes")
        }
        return s
    }

    static func isDate(_ s: String) -> Bool {
        guard s.count == 8, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        let y = Int(s.prefix(4))!, m = Int(s.dropFirst(4).prefix(2))!, d = Int(s.suffix(2))!
        return y >= 1900 && (1...12).contains(m) && (1...31).contains(d)
    }

    /// DS: at most 16 characters.
    static func decimalString(_ v: Double) -> String {
        String(format: "%.2f", min(v, 1e12))
    }
}
