import Foundation
import Recompression
import Testing
import TestSupport

/// The hub's rebuild of recompressed uploads (`RecompressedFile.parse` and
/// `rebuild`, libjxl's JPEG reconstruction underneath): bodies arrive from
/// the network. Every input is refused with a one-line reason, or rebuilt
/// into exactly the declared number of bytes (which the hub then checks
/// against the original's SHA-256); never a crash, a hang or a longer file.
@Suite(.serialized) struct RebuildFuzz {
    static let jpeg = try! CameraJPEG.encode(.yuyv, width: 96, height: 64, quality: 90, seed: 11)
    static let wrapped: [UInt8] = Array("prefix".utf8) + jpeg + [0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]

    static let seeds: [[UInt8]] = [
        try! RecompressedFile.make(file: jpeg, jpegRange: 0..<jpeg.count, minSaving: 0)!.encoded(),
        try! RecompressedFile.make(file: wrapped, jpegRange: 6..<(6 + jpeg.count), minSaving: 0)!.encoded(),
        Array("TSJX".utf8) + [1] + [UInt8](repeating: 0, count: 12),
    ]

    static let dictionary = ByteMutator.tokens([
        "TSJX", "\u{1}", "\u{FF}\u{FF}\u{FF}\u{FF}", "\u{0}\u{0}\u{0}\u{0}", "\u{FF}\u{0A}", "jbrd", "jxlc", "JXL ", "ftyp", "\u{FF}\u{D8}", "\u{FF}\u{D9}",
    ])

    static func check(_ input: [UInt8]) throws -> String {
        // The declared original length: the seeds' own, so most inputs reach libjxl.
        let length = input.count > 20 && input[5...8] == [0, 0, 0, 6] ? wrapped.count : jpeg.count
        do {
            let rebuilt = try RecompressedFile.parse(input).rebuild(length: length)
            guard rebuilt.count == length else { throw Fuzz.Violation("rebuilt \(rebuilt.count) bytes, \(length) declared") }
            return rebuilt == jpeg || rebuilt == wrapped ? "rebuilt the original" : "rebuilt other bytes"
        } catch let error as RecompressionError {
            guard !error.message.isEmpty, !error.message.contains("\n") else {
                throw Fuzz.Violation("the refusal is not one line: \(error.message.debugDescription)")
            }
            return "refused: " + outcomeLabel(error.message, limit: 40)
        }
    }

    @Test func rebuild() {
        let f = Fuzz.run("jxl-rebuild", short: 20_000, seeds: Self.seeds,
                         mutate: { bytes, rng, pool in ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: Self.dictionary) },
                         check: Self.check)
        #expect(f.violations == 0)
        #expect(f.outcomes.keys.contains("rebuilt the original"), "the seeds were not rebuilt")
        #expect(f.outcomes.keys.contains { $0.hasPrefix("refused") }, "nothing was refused")
    }
}
