import Basics
import Crypto
import Dicom
import Foundation
import Imaging
import TestSupport

/// Camera-style JPEGs made by the station's own encoder: YUYV frames (what
/// UVC cameras send uncompressed) become 4:2:2, RGB frames 4:2:0.
enum CameraJPEG {
    /// A frame with a skin-like gradient, a dark lesion and sensor noise, so
    /// the JPEG has real entropy-coded data rather than flat blocks.
    static func rgb(width: Int, height: Int, seed: UInt64 = 1) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        var s = seed
        for y in 0..<height {
            for x in 0..<width {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                let noise = Int(s >> 59) - 16
                let dx = x - width / 2, dy = y - height / 2
                let lesion = dx * dx + dy * dy < (width * width) / 40
                let base = lesion ? (90, 55, 40) : (225 - y * 40 / height, 170 - x * 30 / width, 150)
                let p = (y * width + x) * 3
                out[p] = UInt8(clamping: base.0 + noise)
                out[p + 1] = UInt8(clamping: base.1 + noise)
                out[p + 2] = UInt8(clamping: base.2 + noise)
            }
        }
        return out
    }

    /// YUYV from RGB (BT.601 full range).
    static func yuyv(_ rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 2)
        for y in 0..<height {
            for x in stride(from: 0, to: width, by: 2) {
                func yuv(_ i: Int) -> (Double, Double, Double) {
                    let r = Double(rgb[i]), g = Double(rgb[i + 1]), b = Double(rgb[i + 2])
                    return (0.299 * r + 0.587 * g + 0.114 * b, -0.1687 * r - 0.3313 * g + 0.5 * b + 128, 0.5 * r - 0.4187 * g - 0.0813 * b + 128)
                }
                let a = yuv((y * width + x) * 3), b = yuv((y * width + x + 1) * 3)
                let o = (y * width + x) * 2
                out[o] = UInt8(clamping: Int(a.0.rounded())); out[o + 1] = UInt8(clamping: Int(((a.1 + b.1) / 2).rounded()))
                out[o + 2] = UInt8(clamping: Int(b.0.rounded())); out[o + 3] = UInt8(clamping: Int(((a.2 + b.2) / 2).rounded()))
            }
        }
        return out
    }

    static func encode(_ format: RawPixelFormat, width: Int, height: Int, quality: Int = 90, seed: UInt64 = 1) throws -> [UInt8] {
        let rgb = rgb(width: width, height: height, seed: seed)
        let raw = format == .yuyv ? yuyv(rgb, width: width, height: height) : rgb
        return try raw.withUnsafeBytes { try [UInt8](JPEGEncoder(quality: quality).encode(RawFrameView(format: format, width: width, height: height, bytes: $0))) }
    }

    /// 4:2:2, as from a UVC camera's YUYV.
    static func yuyv422(width: Int = 320, height: Int = 240, quality: Int = 90) throws -> [UInt8] {
        try encode(.yuyv, width: width, height: height, quality: quality)
    }

    /// 4:2:0.
    static func rgb420(width: Int = 320, height: Int = 240, quality: Int = 90) throws -> [UInt8] {
        try encode(.rgb24, width: width, height: height, quality: quality)
    }

    /// A JPEG of odd length, to exercise the fragment's pad byte.
    static func oddLength() throws -> [UInt8] {
        for q in 60...100 {
            let j = try yuyv422(width: 160, height: 120, quality: q)
            if j.count % 2 == 1 { return j }
        }
        throw ToolFailure("no quality gave an odd-length JPEG")
    }
}

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
                 softwareVersion: "telestation 0.1.0", imageSHA256: sha256Hex(jpeg))
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
