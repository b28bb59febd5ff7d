import Dicom
import Foundation
import Imaging
import Testing

/// The DICOM writer's JPEG frame-header parser on mutated camera frames (the
/// JPEG fuzz target's seeds and mutations: changed markers, lengths, sizes,
/// truncation, removed tables), then the whole object around what it accepts.
///
/// Properties: never a crash; a refusal is `invalidJPEG` or
/// `unsupportedJPEG` with a message; an accepted frame has a size, 1 or 3
/// components, ends with EOI, agrees with Imaging's own validator on size
/// and components where that accepts it too, and becomes an object whose
/// last fragment is the input unchanged (plus one pad byte when odd).
@Suite(.serialized) struct DicomFuzz {
    static let context = DicomContext(imageType: .dermoscopic, stationID: "ps-fuzz-01", caseID: "HC-000001", site: "back",
                                      capturedAt: Date(timeIntervalSince1970: 1_767_268_800), softwareVersion: "fuzz",
                                      imageSHA256: String(repeating: "0", count: 64))

    static func check(_ input: [UInt8]) throws -> String {
        let header: JPEGFrameHeader
        do {
            header = try JPEGFrameHeader.parse(input)
        } catch {
            guard [.invalidJPEG, .unsupportedJPEG].contains(error.code), !error.message.isEmpty else {
                throw Fuzz.Violation("refused with \(error.code): \(error.message.debugDescription)")
            }
            return "refused: " + outcomeLabel(error.message, limit: 40)
        }
        guard header.width > 0, header.height > 0, [1, 3].contains(header.components), input.suffix(2) == [0xFF, 0xD9] else {
            throw Fuzz.Violation("an inconsistent header for an accepted frame: \(header)")
        }
        if let info = try? JPEG.validate(Data(input)),
           (info.width, info.height, info.components) != (header.width, header.height, header.components) {
            throw Fuzz.Violation("Imaging reads \(info.width)×\(info.height)×\(info.components), the DICOM parser \(header)")
        }
        let file: [UInt8]
        do {
            file = try DicomObject.make(jpeg: input, context: context)
        } catch {
            if header.width > 0xFFFF || header.height > 0xFFFF { return "accepted, too large" }
            throw Fuzz.Violation("the parser accepted the frame but the object failed: \(error)")
        }
        let padded = input.count % 2 == 1 ? input + [0] : input
        guard file.count % 2 == 0, file.count > padded.count + 8,
              Array(file[(file.count - 8 - padded.count)..<(file.count - 8)]) == padded else {
            throw Fuzz.Violation("the object's fragment is not the input")
        }
        return "accepted \(header.chroma.rawValue)"
    }

    @Test func dicomFrameHeaders() {
        let f = Fuzz.run("dicom-jpeg-header", short: 20_000, seeds: JPEGFuzz.seeds, mutate: JPEGFuzz.mutate, check: Self.check)
        #expect(f.violations == 0)
        #expect(f.outcomes.keys.contains("accepted 4:2:2") && f.outcomes.keys.contains("accepted 4:2:0"))
        #expect(f.outcomes.keys.filter { $0.hasPrefix("refused") }.count >= 10)
    }
}
