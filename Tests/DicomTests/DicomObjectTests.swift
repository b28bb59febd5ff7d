import Dicom
import Foundation
import Testing
import TestSupport

/// The writer's own promises: UIDs, the frame header parser, the body site
/// table, the bytes' layout and determinism.
struct DicomObjectTests {
    /// The kiosk's sites (Station's `BodySite`; StationTests checks the two lists agree).
    static let kioskSites = ["face", "scalp", "neck", "chest", "abdomen", "back", "arm_left", "arm_right", "hand_left", "hand_right",
                             "leg_left", "leg_right", "foot_left", "foot_right", "genital", "mouth", "eye", "other"]

    @Test func uidsAreStableAndUnderTheDocumentedRoot() throws {
        let jpeg = try CameraJPEG.yuyv422()
        let c = context(.dermoscopic, jpeg: jpeg)
        let a = DicomObject.uids(for: c), b = DicomObject.uids(for: c)
        #expect(a == b)
        for uid in [a.study, a.series, a.instance, DicomObject.implementationClassUID] {
            #expect(uid.hasPrefix("2.25."))
            #expect(uid.count <= 64)
            let n = uid.dropFirst(5)
            #expect(n.allSatisfy(\.isNumber) && n.first != "0", "\(uid)")
        }
        // The 128 bits carry a version 8, variant 10 UUID.
        #expect(Self.uuidBits(a.instance).version == 8 && Self.uuidBits(a.instance).variant == 2)
        #expect(Set([a.study, a.series, a.instance]).count == 3)
    }

    @Test func uidsFollowStudyPerCaseSeriesPerDeviceInstancePerImage() throws {
        let jpeg = try CameraJPEG.yuyv422()
        let c = context(.dermoscopic, jpeg: jpeg)
        let base = DicomObject.uids(for: c)
        // Another image of the same case and device: same study and series.
        var other = c
        other.imageSHA256 = String(repeating: "ab", count: 32)
        other.site = "face"; other.note = "otra"; other.capturedAt = Date()
        let o = DicomObject.uids(for: other)
        #expect(o.study == base.study && o.series == base.series && o.instance != base.instance)
        // The clinical camera in the same case: same study, another series.
        var clinical = c
        clinical.imageType = .clinical
        #expect(DicomObject.uids(for: clinical).study == base.study && DicomObject.uids(for: clinical).series != base.series)
        var device = c
        device.model = "DL4"
        #expect(DicomObject.uids(for: device).series != base.series)
        // Another case, or the same case id at another station: another study.
        var case2 = c
        case2.caseID = "HC-004513"
        #expect(DicomObject.uids(for: case2).study != base.study)
        var station2 = c
        station2.stationID = "ps-cusco-02"
        #expect(DicomObject.uids(for: station2).study != base.study)
        // The kiosk's cases: each visit of the same patient is its own study,
        // all images of one visit in one; without a case UID, one study per case id.
        var visit2 = c
        visit2.caseUID = "578d726e-1fec-4650-a276-513f2a5998a9"
        #expect(DicomObject.uids(for: visit2).study != base.study)
        var visit2Image2 = visit2
        visit2Image2.imageSHA256 = String(repeating: "cd", count: 32); visit2Image2.site = "face"
        #expect(DicomObject.uids(for: visit2Image2).study == DicomObject.uids(for: visit2).study)
        var noCase = c, noCase2 = c
        noCase.caseUID = nil; noCase2.caseUID = nil; noCase2.imageSHA256 = String(repeating: "ef", count: 32)
        #expect(DicomObject.uids(for: noCase).study == DicomObject.uids(for: noCase2).study && DicomObject.uids(for: noCase).study != base.study)
        // Parts cannot run together: ("ab", "c") and ("a", "bc") differ.
        var x = c, y = c
        x.stationID = "ab"; x.caseID = "c"; y.stationID = "a"; y.caseID = "bc"
        #expect(DicomObject.uids(for: x).study != DicomObject.uids(for: y).study)
    }

    @Test func sameInputsGiveTheSameBytes() throws {
        let jpeg = try CameraJPEG.yuyv422()
        for type in DicomImageType.allCases {
            let a = try DicomObject.make(jpeg: jpeg, context: context(type, jpeg: jpeg))
            let b = try DicomObject.make(jpeg: jpeg, context: context(type, jpeg: jpeg))
            #expect(a == b)
        }
    }

    @Test func fileLayout() throws {
        let jpeg = try CameraJPEG.oddLength()
        #expect(jpeg.count % 2 == 1)
        let file = try DicomObject.make(jpeg: jpeg, context: context(.clinical, jpeg: jpeg))
        #expect(file.count % 2 == 0)
        #expect(file.prefix(128).allSatisfy { $0 == 0 } && Array(file[128..<132]) == Array("DICM".utf8))
        // Pixel Data: OB, undefined length, empty offset table, one fragment = JPEG + pad, delimiter.
        let tail: [UInt8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]
        #expect(Array(file.suffix(8)) == tail)
        let fragmentEnd = file.count - 8
        let fragmentStart = fragmentEnd - (jpeg.count + 1)
        #expect(Array(file[fragmentStart..<fragmentEnd - 1]) == jpeg && file[fragmentEnd - 1] == 0)
        let header = Array(file[fragmentStart - 8 - 8 - 12..<fragmentStart])
        let len = UInt32(jpeg.count + 1)
        #expect(header == [0xE0, 0x7F, 0x10, 0x00, 0x4F, 0x42, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                           0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0,
                           0xFE, 0xFF, 0x00, 0xE0, UInt8(len & 0xFF), UInt8(len >> 8 & 0xFF), UInt8(len >> 16 & 0xFF), UInt8(len >> 24)])
    }

    // MARK: The JPEG frame header

    @Test func readsTheFrameHeaderOfCameraJPEGs() throws {
        let j422 = try CameraJPEG.yuyv422(width: 320, height: 240)
        let h422 = try JPEGFrameHeader.parse(j422)
        #expect(h422 == JPEGFrameHeader(width: 320, height: 240, components: 3, chroma: .sub422))
        #expect(h422.photometricInterpretation == "YBR_FULL_422")
        let h420 = try JPEGFrameHeader.parse(try CameraJPEG.rgb420(width: 98, height: 66))
        #expect(h420 == JPEGFrameHeader(width: 98, height: 66, components: 3, chroma: .sub420))
        #expect(h420.photometricInterpretation == "YBR_FULL_422")
    }

    @Test func refusesWhatJPEGBaselineCannotCarry() throws {
        let good = try CameraJPEG.yuyv422(width: 64, height: 48)
        func expectError(_ bytes: [UInt8], _ code: DicomErrorCode, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try JPEGFrameHeader.parse(bytes)
                Issue.record("accepted \(bytes.count) bytes", sourceLocation: sourceLocation)
            } catch {
                #expect(error.code == code, sourceLocation: sourceLocation)
                #expect(words.isEmpty || error.message.contains(words), "\(error.message)", sourceLocation: sourceLocation)
            }
        }
        expectError([], .invalidJPEG, "not a JPEG")
        expectError(Array("GIF89a not a jpeg at all".utf8), .invalidJPEG, "not a JPEG")
        expectError(Array(good.prefix(good.count / 2)), .invalidJPEG, "does not end with the EOI")
        expectError(Array(good.prefix(300)) + [0xFF, 0xD9], .invalidJPEG, "past the end of the file")
        expectError([0xFF, 0xD8, 0xFF, 0xD9], .invalidJPEG, "before its first scan")
        // Progressive, lossless, 12-bit: change the SOF marker or precision.
        let sof = Self.sofOffset(good)
        var progressive = good; progressive[sof + 1] = 0xC2
        expectError(progressive, .unsupportedJPEG, "progressive")
        var lossless = good; lossless[sof + 1] = 0xC3
        expectError(lossless, .unsupportedJPEG, "lossless")
        var twelve = good; twelve[sof + 4] = 12
        expectError(twelve, .unsupportedJPEG, "12-bit")
        var four = good; four[sof + 9] = 4
        expectError(four, .unsupportedJPEG, "4 colour components")
        // 4:4:4: every component 1×1.
        var full = good; full[sof + 11] = 0x11
        expectError(full, .unsupportedJPEG, "4:4:4")
        // A raw MJPEG frame: no DHT.
        expectError(Self.withoutHuffmanTables(good), .invalidJPEG, "Huffman")
    }

    @Test func greyscaleIsMonochrome2() throws {
        // The station's encoder makes colour; a greyscale frame header by hand.
        let grey: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 24, 1, 1, 0x11, 0, 0xFF, 0xC4, 0, 2, 0xFF, 0xDA, 0, 2, 0, 0xFF, 0xD9]
        let h = try JPEGFrameHeader.parse(grey)
        #expect(h == JPEGFrameHeader(width: 24, height: 16, components: 1, chroma: .monochrome))
        #expect(h.photometricInterpretation == "MONOCHROME2")
    }

    // MARK: Context

    @Test(arguments: kioskSites) func everyKioskSiteMaps(_ site: String) throws {
        let jpeg = try CameraJPEG.yuyv422(width: 32, height: 16)
        _ = try DicomObject.make(jpeg: jpeg, context: context(.clinical, jpeg: jpeg, site: site))
        #expect(DicomObject.bodySites.contains(site))
    }

    @Test func bodySiteListIsTheKiosks() {
        #expect(DicomObject.bodySites.sorted() == Self.kioskSites.sorted())
    }

    @Test func badContextValuesAreClearErrors() throws {
        let jpeg = try CameraJPEG.yuyv422(width: 32, height: 16)
        func expectError(_ change: (inout DicomContext) -> Void, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
            var c = context(.dermoscopic, jpeg: jpeg)
            change(&c)
            do {
                _ = try DicomObject.make(jpeg: jpeg, context: c)
                Issue.record("accepted", sourceLocation: sourceLocation)
            } catch {
                #expect(error.code == .invalidContext, sourceLocation: sourceLocation)
                #expect(error.message.contains(words), "\(error.message)", sourceLocation: sourceLocation)
            }
        }
        expectError({ $0.site = "elbow" }, "\"elbow\" is not one the kiosk offers")
        expectError({ $0.patientSex = "female" }, "sex")
        expectError({ $0.patientBirthDate = "1984-05-23" }, "birth date")
        expectError({ $0.caseID = String(repeating: "9", count: 65) }, "65 bytes")
        expectError({ $0.caseID = "" }, "empty")
        expectError({ $0.caseID = "HC\\1" }, "backslash")
        expectError({ $0.imageSHA256 = "xyz" }, "64 hex digits")
    }

    // MARK: Helpers

    static func sofOffset(_ b: [UInt8]) -> Int {
        var i = 2
        while b[i + 1] != 0xC0 { i += 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3])) }
        return i
    }

    static func withoutHuffmanTables(_ b: [UInt8]) -> [UInt8] {
        var out = Array(b.prefix(2))
        var i = 2
        while i + 4 <= b.count, b[i] == 0xFF {
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if b[i + 1] == 0xDA { break }
            if b[i + 1] != 0xC4 { out += b[i..<i + 2 + len] }
            i += 2 + len
        }
        return out + b[i...]
    }

    /// The UUID version and variant inside a 2.25 UID.
    static func uuidBits(_ uid: String) -> (version: Int, variant: Int) {
        var n = [UInt8](repeating: 0, count: 16)  // big-endian 128 bits
        for ch in uid.dropFirst(5) {
            var carry = Int(ch.wholeNumberValue!)
            for k in (0..<16).reversed() {
                let v = Int(n[k]) * 10 + carry
                n[k] = UInt8(v & 0xFF); carry = v >> 8
            }
        }
        return (Int(n[6] >> 4), Int(n[8] >> 6))
    }
}
