import Basics
import Crypto
import Dicom
import Foundation
import Imaging
import TestSupport

struct ToolFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func sha256Hex(_ b: [UInt8]) -> String { SHA256.hash(data: b).hex }

func context(_ type: DicomImageType, jpeg: [UInt8], site: String = "arm_left", withPatient: Bool = true) -> DicomContext {
    DicomContext(imageType: type, stationID: "ps-cusco-01", stationName: "PS Ccatca", institution: "Red de Salud Quispicanchi",
                 caseID: "HC-004512",
                 patientName: withPatient ? "QUISPE MAMANI^Ñusta Illariy" : nil,
                 patientSex: withPatient ? "F" : nil, patientBirthDate: withPatient ? "19840523" : nil,
                 site: site, note: withPatient ? "lesión pigmentada, 6 mm; crece desde hace 3 meses" : "",
                 capturedAt: Date(timeIntervalSince1970: 1_767_268_800.25), clockSynchronized: withPatient ? true : nil,
                 manufacturer: withPatient ? "DermLite" : nil, model: withPatient ? "DL5" : nil, serial: withPatient ? "DL5-0042" : nil,
                 polarized: withPatient ? true : nil, contact: withPatient ? false : nil,
                 softwareVersion: "telestation 0.1.0", imageSHA256: sha256Hex(jpeg),
                 patientAge: withPatient ? "041Y" : nil, caseUID: withPatient ? "4b8c84c6-31eb-480e-b912-1f91dcd92140" : nil)
}

/// The test tools, where `make deps-test` puts them. A missing tool fails
/// the test: an object nobody checked is not one we may call valid.
enum Tools {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func path(_ name: String, in dirs: [String] = ["/usr/bin", "/usr/local/bin"]) throws -> String {
        for d in dirs where FileManager.default.isExecutableFile(atPath: d + "/" + name) { return d + "/" + name }
        throw ToolFailure("\(name) is not installed: run `make deps-test` (Debian dicom3tools for dciodvfy, dcmtk for dcmdump)")
    }

    static var python: String {
        get throws {
            let p = packageRoot + "/.build/venv/bin/python3"
            guard FileManager.default.isExecutableFile(atPath: p) else {
                throw ToolFailure("\(p) is missing: run `make deps-test` (it makes the venv with pydicom)")
            }
            return p
        }
    }

    static func temporaryFile(_ bytes: [UInt8], suffix: String = ".dcm") throws -> String {
        let path = NSTemporaryDirectory() + "/dicom-test-\(UUID().uuidString)\(suffix)"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw ToolFailure("cannot write \(path)") }
        return path
    }

    /// dciodvfy's verdict: its error and warning lines (it writes to stderr).
    static func dciodvfy(_ path: String) throws -> (errors: [String], warnings: [String], output: String) {
        let r = try ProcessRunner.run(try Tools.path("dciodvfy"), ["-new", path])
        let out = r.stdout + r.stderr
        let lines = out.split(separator: "\n").map(String.init)
        return (lines.filter { $0.hasPrefix("Error") }, lines.filter { $0.hasPrefix("Warning") }, out)
    }

    /// pydicom reads the file and prints what the test compares.
    static let pydicomScript = """
    import hashlib, json, sys
    import pydicom
    from pydicom.encaps import generate_frames
    ds = pydicom.dcmread(sys.argv[1])
    frames = list(generate_frames(ds.PixelData, number_of_frames=1))
    seq = ds.AnatomicRegionSequence[0]
    mods = [m.CodeMeaning for m in seq.get("AnatomicRegionModifierSequence", [])]
    print(json.dumps({
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "sop_class": str(ds.SOPClassUID), "modality": ds.Modality,
        "patient_id": ds.PatientID, "patient_name": str(ds.PatientName),
        "rows": ds.Rows, "columns": ds.Columns, "photometric": ds.PhotometricInterpretation,
        "fragments": len(frames), "fragment_sha256": hashlib.sha256(frames[0]).hexdigest(), "fragment_length": len(frames[0]),
        "site": [seq.CodeValue, seq.CodingSchemeDesignator, seq.CodeMeaning], "laterality": mods,
        "comments": ds.get("ImageComments", ""),
    }))
    """

    static func pydicom(_ path: String) throws -> [String: Any] {
        let r = try ProcessRunner.run(try python, ["-c", pydicomScript, path])
        if r.stderr.contains("No module named 'pydicom'") {
            throw ToolFailure("pydicom is not in .build/venv: run `make deps-test` (PIP_TEST has pydicom)")
        }
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw ToolFailure("pydicom could not read \(path): \(r.stderr)")
        }
        return obj
    }
}
