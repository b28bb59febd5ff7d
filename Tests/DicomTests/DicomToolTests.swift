import Dicom
import Foundation
import Testing
import TestSupport

/// The objects as the field's own tools see them: dciodvfy (dicom3tools)
/// judges them against the IODs, dcmdump (dcmtk) and pydicom read them, and
/// the encapsulated fragment is the camera's JPEG byte for byte.
@Suite(.serialized) struct DicomToolTests {
    struct Case: Sendable, CustomStringConvertible {
        var type: DicomImageType
        var chroma: String
        var withPatient: Bool
        var site: String
        var description: String { "\(type.rawValue) \(chroma) \(withPatient ? "with" : "without") patient, \(site)" }
    }

    static let cases: [Case] = DicomImageType.allCases.flatMap { type in
        [Case(type: type, chroma: "4:2:2", withPatient: true, site: "arm_left"),
         Case(type: type, chroma: "4:2:0", withPatient: false, site: "face"),
         Case(type: type, chroma: "4:2:2 odd", withPatient: false, site: "foot_right")]
    }

    static func jpeg(_ c: Case) throws -> [UInt8] {
        switch c.chroma {
        case "4:2:0": try CameraJPEG.rgb420(width: 322, height: 242)
        case "4:2:2 odd": try CameraJPEG.oddLength()
        default: try CameraJPEG.yuyv422(width: 640, height: 480)
        }
    }

    @Test(arguments: cases) func dciodvfyFindsNoErrors(_ c: Case) throws {
        let jpeg = try Self.jpeg(c)
        let file = try DicomObject.make(jpeg: jpeg, context: context(c.type, jpeg: jpeg, site: c.site, withPatient: c.withPatient))
        let path = try Tools.temporaryFile(file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let v = try Tools.dciodvfy(path)
        #expect(v.errors.isEmpty, "dciodvfy:\n\(v.output)")
        #expect(v.output.contains(c.type == .dermoscopic ? "DermoscopicPhotographyImage" : "VLPhotographicImage"), "dciodvfy did not take it for the IOD:\n\(v.output)")
        if !v.warnings.isEmpty { print("dciodvfy warnings for \(c):\n" + v.warnings.joined(separator: "\n")) }
    }

    @Test(arguments: cases) func dcmdumpReadsIt(_ c: Case) throws {
        let jpeg = try Self.jpeg(c)
        let file = try DicomObject.make(jpeg: jpeg, context: context(c.type, jpeg: jpeg, site: c.site, withPatient: c.withPatient))
        let path = try Tools.temporaryFile(file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try ProcessRunner.run(try Tools.path("dcmdump"), ["-E", "+U8", path])
        #expect(r.status == 0, "dcmdump: \(r.stderr)")
        #expect(r.stderr.isEmpty, "dcmdump complained: \(r.stderr)")
        #expect(r.stdout.contains("(0010,0020) LO [HC-004512]"), "\(r.stdout)")
        #expect(r.stdout.contains("(0008,0060) CS [\(c.type == .dermoscopic ? "DMS" : "XC")]"))
        let sop = c.type == .dermoscopic ? "=DermoscopicPhotographyImageStorage" : "=VLPhotographicImageStorage"
        #expect(r.stdout.contains("(0008,0016) UI \(sop)"), "\(r.stdout)")
        #expect(r.stdout.contains("(0002,0010) UI =JPEGBaseline"))
        if c.withPatient {
            #expect(r.stdout.contains("QUISPE MAMANI^Ñusta Illariy"), "\(r.stdout)")
            #expect(r.stdout.contains("(0010,1010) AS [041Y]"), "\(r.stdout)")
        }
    }

    @Test(arguments: cases) func pydicomReadsTheCameraJPEGUnchanged(_ c: Case) throws {
        let jpeg = try Self.jpeg(c)
        let file = try DicomObject.make(jpeg: jpeg, context: context(c.type, jpeg: jpeg, site: c.site, withPatient: c.withPatient))
        let path = try Tools.temporaryFile(file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let got = try Tools.pydicom(path)
        let padded = jpeg.count % 2 == 1 ? jpeg + [0] : jpeg
        #expect(got["fragments"] as? Int == 1)
        #expect(got["fragment_length"] as? Int == padded.count)
        #expect(got["fragment_sha256"] as? String == sha256Hex(padded), "the fragment is not the camera's JPEG")
        #expect(got["transfer_syntax"] as? String == "1.2.840.10008.1.2.4.50")
        #expect(got["patient_id"] as? String == "HC-004512")
        #expect(got["photometric"] as? String == "YBR_FULL_422")
        let header = try JPEGFrameHeader.parse(jpeg)
        #expect(got["rows"] as? Int == header.height && got["columns"] as? Int == header.width)
        #expect(got["patient_name"] as? String == (c.withPatient ? "QUISPE MAMANI^Ñusta Illariy" : ""))
        let laterality = got["laterality"] as? [String]
        #expect(laterality == (c.site.hasSuffix("_left") ? ["Left"] : c.site.hasSuffix("_right") ? ["Right"] : []))
        let site = got["site"] as? [String]
        #expect(site?[1] == "SCT")
        if c.withPatient { #expect(got["comments"] as? String == "lesión pigmentada, 6 mm; crece desde hace 3 meses") }
    }
}
