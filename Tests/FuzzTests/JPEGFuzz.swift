import CTurboJPEG
import Foundation
import Testing
import Imaging

/// JPEG validation and Huffman-table insertion on mutated camera frames:
/// real JPEGs made by TurboJPEG (baseline in every subsampling, greyscale,
/// progressive), the same with their DHT segments removed as UVC cameras
/// send them, and with padding after EOI; then bit flips, truncation,
/// giant or tiny segment lengths, changed markers, copied segments.
///
/// Properties: never a crash; a frame `JPEG.validate` accepts gives a
/// consistent header, `MJPEG.prepare` succeeds on it, table insertion is
/// idempotent and its output validates with tables; the frame then goes
/// through the real still path (`StillProcessor.process(mjpeg:)`, which
/// decodes with TurboJPEG) and either comes out with the header's size or
/// fails with an ImagingError that says why. Unmutated frames without
/// tables decode exactly like the originals (baseline; progressive
/// frames have per-scan optimised tables, and cameras send baseline).
@Suite(.serialized) struct JPEGFuzz {
    /// Frames to start from, and their originals' pixels for the unmutated check.
    static let frames: [(jpeg: [UInt8], original: [UInt8])] = {
        var out: [(jpeg: [UInt8], original: [UInt8])] = []
        guard let tj = tjInitCompress() else { return [] }
        defer { tjDestroy(tj) }
        let shapes: [(w: Int, h: Int, subsamp: TJSAMP, flags: Int32)] = [
            (16, 16, TJSAMP_420, 0), (33, 17, TJSAMP_422, 0), (64, 48, TJSAMP_444, 0), (24, 40, TJSAMP_GRAY, 0),
            (40, 24, TJSAMP_440, 0), (48, 32, TJSAMP_420, TJFLAG_PROGRESSIVE), (8, 8, TJSAMP_444, TJFLAG_PROGRESSIVE),
        ]
        for (i, s) in shapes.enumerated() {
            var rgb = [UInt8](repeating: 0, count: s.w * s.h * 3)
            for y in 0..<s.h { for x in 0..<s.w {
                let p = (y * s.w + x) * 3
                rgb[p] = UInt8((x * 255) / max(1, s.w - 1)); rgb[p + 1] = UInt8((y * 255) / max(1, s.h - 1))
                rgb[p + 2] = UInt8(truncatingIfNeeded: (x ^ y) &* 37 &+ i * 50)
            } }
            var buf: UnsafeMutablePointer<UInt8>?
            var size: UInt = 0
            let rc = tjCompress2(tj, rgb, Int32(s.w), 0, Int32(s.h), Int32(TJPF_RGB.rawValue), &buf, &size,
                                 Int32(s.subsamp.rawValue), Int32(60 + 5 * i), s.flags)
            guard rc == 0, let buf else { continue }
            let jpeg = Array(UnsafeBufferPointer(start: buf, count: Int(size)))
            tjFree(buf)
            out.append((jpeg, rgb))
        }
        return out
    }()

    /// Segments before the first scan: (marker offset, total length including the marker).
    static func segments(_ b: [UInt8]) -> [(offset: Int, length: Int, marker: UInt8)] {
        var result: [(Int, Int, UInt8)] = []
        var i = 2
        while i + 4 <= b.count, b[i] == 0xFF {
            let marker = b[i + 1]
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            result.append((i, len + 2, marker))
            if marker == 0xDA { break }
            i += len + 2
        }
        return result
    }

    /// The frame as a UVC camera sends it: no DHT segments before the scan.
    static func stripTables(_ b: [UInt8]) -> [UInt8] {
        var out = b
        for s in segments(b).reversed() where s.marker == 0xC4 && s.offset + s.length <= out.count {
            out.removeSubrange(s.offset..<s.offset + s.length)
        }
        return out
    }

    static let seeds: [[UInt8]] = frames.flatMap { f in
        [f.jpeg, stripTables(f.jpeg), stripTables(f.jpeg) + [UInt8](repeating: 0, count: 37)]
    }

    static func mutate(_ b: inout [UInt8], _ rng: inout SplitMix, _ pool: [[UInt8]]) {
        let segs = segments(b)
        switch rng.below(12) {
        case 0:  // a segment length: giant, tiny, off by one
            guard let s = segs.randomElement(using: &rng), s.offset + 4 <= b.count else { return }
            let len = rng.pick([0, 1, 2, 3, 0xFFFF, 0xFFFE, 0x8000, s.length - 1, s.length - 3, s.length + 1, rng.below(0x10000)])
            b[s.offset + 2] = UInt8(truncatingIfNeeded: len >> 8); b[s.offset + 3] = UInt8(truncatingIfNeeded: len)
        case 1:  // a marker becomes another
            guard let s = segs.randomElement(using: &rng) else { return }
            b[s.offset + 1] = rng.pick([0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC8, 0xC9, 0xCC, 0xD0, 0xD8, 0xD9, 0xDA, 0xDB, 0xDD, 0xE0, 0xFE, 0x01, 0xFF, 0x00])
        case 2:  // a frame header field: precision, size, component count
            guard let s = segs.first(where: { (0xC0...0xC2).contains($0.marker) }), s.offset + 10 <= b.count else { return }
            let field = rng.pick([4, 5, 6, 7, 8, 9])
            b[s.offset + field] = rng.pick([0, 1, 2, 3, 4, 8, 12, 16, 0x7F, 0xFF])
        case 3:  // a segment copied or removed
            guard let s = segs.randomElement(using: &rng), s.offset + s.length <= b.count else { return }
            let piece = Array(b[s.offset..<s.offset + s.length])
            if rng.chance(2) { b.removeSubrange(s.offset..<s.offset + s.length) } else {
                let to = rng.pick(segs).offset
                b.insert(contentsOf: piece, at: to)
            }
        case 4: b = stripTables(b)
        case 5:  // truncated anywhere, or padded
            if rng.chance(2) { b = Array(b.prefix(rng.below(b.count + 1))) } else {
                b += [UInt8](repeating: rng.pick([0, 0xFF, 0xD9]), count: 1 + rng.below(64))
            }
        case 6:  // bit flips in the entropy-coded data
            let start = segs.last.map { $0.offset + $0.length } ?? 2
            guard start < b.count else { return }
            for _ in 0..<1 + rng.below(4) { b[start + rng.below(b.count - start)] ^= 1 << UInt8(rng.below(8)) }
        default:
            ByteMutator.mutate(&b, &rng, pool: pool, dictionary: dictionary)
        }
    }

    static let dictionary: [[UInt8]] = [[0xFF, 0xD8], [0xFF, 0xD9], [0xFF, 0xDA], [0xFF, 0xC4], [0xFF, 0xC0, 0x00, 0x11], [0xFF, 0xC2],
                                        [0xFF, 0xFF, 0xFF], [0xFF, 0x00], [0xFF, 0xD0], [0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01], [0xFF, 0xE0, 0xFF, 0xFF],
                                        standardTables]

    /// The DHT segment `MJPEG` inserts, as it appears in a prepared frame.
    static let standardTables: [UInt8] = {
        let stripped = Data(stripTables(frames[0].jpeg))
        guard let info = try? JPEG.validate(stripped) else { return [] }
        let fixed = [UInt8](MJPEG.insertHuffmanTablesIfMissing(stripped))
        return Array(fixed[info.frameHeaderOffset..<info.frameHeaderOffset + fixed.count - stripped.count])
    }()

    /// One processor for the whole run, as the capture thread keeps one.
    nonisolated(unsafe) static let processor = try! StillProcessor(jpegQuality: 85, previewWidth: 32)

    static func check(_ input: [UInt8]) throws -> String {
        let frame = Data(input)
        let info: JPEGInfo
        do {
            info = try JPEG.validate(frame)
        } catch {
            guard [.invalidJPEG, .unsupportedJPEG].contains(error.code), !error.message.isEmpty else {
                throw Fuzz.Violation("validation failed with \(error.code): \(error.message)")
            }
            // Insertion leaves what it cannot validate alone.
            guard MJPEG.insertHuffmanTablesIfMissing(frame) == frame else { throw Fuzz.Violation("insertion changed a refused frame") }
            return "refused: " + outcomeLabel(error.message, limit: 40)
        }
        guard info.length >= 4, info.length <= input.count, input[info.length - 2] == 0xFF, input[info.length - 1] == 0xD9,
              info.frameHeaderOffset >= 2, info.frameHeaderOffset < info.length, input[info.frameHeaderOffset] == 0xFF,
              info.width > 0, info.height > 0, [1, 3].contains(info.components), info.precision == 8,
              input[info.length...].allSatisfy({ $0 == 0 }) else {
            throw Fuzz.Violation("an inconsistent header for an accepted frame: \(info)")
        }
        let result: (jpeg: Data, info: JPEGInfo)
        do { result = try MJPEG.prepare(frame) } catch { throw Fuzz.Violation("prepare refused a valid frame: \(error)") }
        let (jpeg, prepared) = result
        guard MJPEG.insertHuffmanTablesIfMissing(frame) == jpeg, MJPEG.insertHuffmanTablesIfMissing(jpeg) == jpeg else {
            throw Fuzz.Violation("table insertion is not idempotent")
        }
        guard jpeg.count == info.length + (info.hasHuffmanTables ? 0 : Self.standardTables.count) else {
            throw Fuzz.Violation("prepared \(jpeg.count) bytes from a frame of \(info.length)")
        }
        do {
            let again = try JPEG.validate(jpeg)
            guard again == prepared, again.hasHuffmanTables, again.length == jpeg.count,
                  (again.width, again.height, again.components, again.progressive) == (info.width, info.height, info.components, info.progressive) else {
                throw Fuzz.Violation("the prepared frame reads as \(again), expected \(prepared)")
            }
        } catch let e as Fuzz.Violation { throw e } catch { throw Fuzz.Violation("the prepared frame does not validate: \(error)") }

        // Big frames from mutated size fields go through the header only:
        // decoding 65535×65535 pixels of nothing is slow, not wrong.
        guard info.width * info.height <= 1 << 20 else { return "accepted, large" }
        do {
            let still = try processor.process(mjpeg: frame)
            guard still.info.width == info.width, still.info.height == info.height, still.jpeg == jpeg, !still.preview.isEmpty else {
                throw Fuzz.Violation("the still is \(still.info.width)×\(still.info.height), the header says \(info.width)×\(info.height)")
            }
            return info.hasHuffmanTables ? "decoded" : "decoded after insertion"
        } catch let e as Fuzz.Violation { throw e } catch {
            guard let e = error as? ImagingError, e.code == .decodeFailed, !e.message.isEmpty else {
                throw Fuzz.Violation("the still path failed without saying why: \(error)")
            }
            return "accepted, decode refused: " + outcomeLabel(e.message, limit: 40)
        }
    }

    @Test func unmutatedFramesWithoutTablesDecodeLikeTheOriginals() throws {
        #expect(Self.frames.count == 7)
        #expect(Self.standardTables.count == 420 && Self.standardTables.starts(with: [0xFF, 0xC4, 0x01, 0xA2]))
        let decoder = try JPEGDecoder()
        // Progressive frames carry per-scan optimised tables; cameras send baseline.
        for f in Self.frames where try !JPEG.validate(Data(f.jpeg)).progressive {
            let stripped = Self.stripTables(f.jpeg)
            #expect(stripped.count < f.jpeg.count)
            let fixed = MJPEG.insertHuffmanTablesIfMissing(Data(stripped))
            let info = try JPEG.validate(fixed)
            #expect(info.hasHuffmanTables)
            let gray = info.components == 1
            #expect(try decoder.decode(fixed, as: gray ? .gray : .rgb) == decoder.decode(Data(f.jpeg), as: gray ? .gray : .rgb))
        }
    }

    @Test func jpegFrames() {
        let f = Fuzz.run("jpeg-mjpeg", short: 20_000, seeds: Self.seeds, mutate: Self.mutate, check: Self.check)
        #expect(f.violations == 0)
        for outcome in ["decoded", "decoded after insertion"] { #expect(f.outcomes[outcome, default: 0] > 0, "no input gave \(outcome)") }
        #expect(f.outcomes.keys.contains { $0.hasPrefix("accepted, decode refused") })
        #expect(f.outcomes.keys.filter { $0.hasPrefix("refused") }.count >= 10)
    }
}
