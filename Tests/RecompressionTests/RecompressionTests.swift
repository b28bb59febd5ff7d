import Basics
import Foundation
import Recompression
import Testing
import TestSupport

/// libjxl's own tools, where `make deps-test` puts them (Debian
/// libjxl-tools). A missing tool fails the test.
enum JXLTools {
    struct Missing: Error, CustomStringConvertible { var description: String }

    static func path(_ name: String) throws -> String {
        for d in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: d + "/" + name) { return d + "/" + name }
        throw Missing(description: "\(name) is not installed: run `make deps-test` (Debian libjxl-tools)")
    }

    static func temporary(_ suffix: String) -> String { NSTemporaryDirectory() + "/recompression-\(UUID().uuidString)\(suffix)" }

    static func write(_ bytes: [UInt8], suffix: String) throws -> String {
        let p = temporary(suffix)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Runs a libjxl tool and fails with its output when it fails.
    static func run(_ tool: String, _ args: [String]) throws {
        let r = try ProcessRunner.run(try path(tool), args)
        guard r.status == 0 else { throw Missing(description: "\(tool) \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
    }
}

@Suite struct JPEGXLTests {
    /// A 4:2:2 camera frame, as UVC cameras' YUYV becomes.
    static let camera = try! CameraJPEG.yuyv422(width: 640, height: 480, quality: 92)

    @Test func recompressionIsSmallerAndRebuildsTheSameBytes() throws {
        let jpeg = Self.camera
        let jxl = try #require(try JPEGXL.recompress(jpeg))
        #expect(jxl.count < jpeg.count * 95 / 100, "only \(jpeg.count) → \(jxl.count) bytes")
        let back = try JPEGXL.reconstruct(jxl, maxBytes: jpeg.count)
        #expect(back == jpeg)
    }

    /// The judge is libjxl's own djxl: what the station sends, the reference
    /// decoder turns back into the camera's file, bit for bit.
    @Test func djxlRebuildsTheStationsStream() throws {
        let jpeg = Self.camera
        let jxl = try #require(try JPEGXL.recompress(jpeg))
        let input = try JXLTools.write(jxl, suffix: ".jxl"), output = JXLTools.temporary(".jpg")
        defer { unlink(input); unlink(output) }
        try JXLTools.run("djxl", [input, output])
        #expect(try JXLTools.read(output) == jpeg)
    }

    /// And the other way: a stream made by cjxl is rebuilt by the hub's code.
    @Test func theHubRebuildsCjxlsStream() throws {
        let jpeg = try CameraJPEG.rgb420(width: 320, height: 240, quality: 85)
        let input = try JXLTools.write(jpeg, suffix: ".jpg"), output = JXLTools.temporary(".jxl")
        defer { unlink(input); unlink(output) }
        try JXLTools.run("cjxl", [input, output, "--lossless_jpeg=1"])
        #expect(try JPEGXL.reconstruct(try JXLTools.read(output), maxBytes: jpeg.count) == jpeg)
    }

    /// A JPEG XL image that is not a recompressed JPEG has no original to
    /// rebuild: refused, with the reason.
    @Test func aStreamWithoutReconstructionDataIsRefused() throws {
        let rgb = CameraJPEG.rgb(width: 64, height: 48)
        var ppm = Array("P6\n64 48\n255\n".utf8)
        ppm += rgb
        let input = try JXLTools.write(ppm, suffix: ".ppm"), output = JXLTools.temporary(".jxl")
        defer { unlink(input); unlink(output) }
        try JXLTools.run("cjxl", [input, output])
        #expect {
            _ = try JPEGXL.reconstruct(try JXLTools.read(output), maxBytes: 1 << 20)
        } throws: { ($0 as? RecompressionError)?.message.contains("no JPEG reconstruction data") == true }
    }

    @Test func aRebuildLongerThanDeclaredIsRefused() throws {
        let jpeg = Self.camera
        let jxl = try #require(try JPEGXL.recompress(jpeg))
        #expect {
            _ = try JPEGXL.reconstruct(jxl, maxBytes: jpeg.count - 1)
        } throws: { ($0 as? RecompressionError)?.message.contains("longer than") == true }
    }

    @Test func damagedAndTruncatedStreamsAreRefused() throws {
        let jxl = try #require(try JPEGXL.recompress(Self.camera))
        #expect(throws: RecompressionError.self) { try JPEGXL.reconstruct(Array(jxl.prefix(jxl.count / 2)), maxBytes: Self.camera.count) }
        #expect(throws: RecompressionError.self) { try JPEGXL.reconstruct(Array(repeating: 0x42, count: 100), maxBytes: Self.camera.count) }
        #expect(throws: RecompressionError.self) { try JPEGXL.reconstruct([], maxBytes: Self.camera.count) }
    }

    @Test func limitsAreKeptBeforeLibjxlWorks() throws {
        let small = JPEGXL.Limits(maxPixels: 640 * 480 - 1, maxBytes: 64 << 20)
        #expect { _ = try JPEGXL.recompress(Self.camera, limits: small) } throws: { ($0 as? RecompressionError)?.code == .tooLarge }
        let jxl = try #require(try JPEGXL.recompress(Self.camera))
        #expect { _ = try JPEGXL.reconstruct(jxl, maxBytes: Self.camera.count, limits: small) } throws: { ($0 as? RecompressionError)?.code == .tooLarge }
        #expect { _ = try JPEGXL.recompress(Array("not a jpeg".utf8)) } throws: { ($0 as? RecompressionError)?.code == .unsupported }
    }

    /// Asking for more saving than the stream gives stops the encoder: no body.
    @Test func noSavingNoStream() throws {
        #expect(try JPEGXL.recompress(Self.camera, minSaving: Self.camera.count * 9 / 10) == nil)
    }
}

@Suite struct RecompressedFileTests {
    /// A file with the JPEG in its middle, as in a DICOM object.
    static func wrapped() throws -> (file: [UInt8], range: Range<Int>) {
        let jpeg = JPEGXLTests.camera
        let prefix = Array("DICM-like header ".utf8) + [UInt8](repeating: 0, count: 131)
        let suffix: [UInt8] = [0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]
        return (prefix + jpeg + suffix, prefix.count..<(prefix.count + jpeg.count))
    }

    @Test func aWrappedJPEGRoundTrips() throws {
        let (file, range) = try Self.wrapped()
        let made = try #require(try RecompressedFile.make(file: file, jpegRange: range))
        let body = made.encoded()
        #expect(body.count < file.count * 97 / 100)
        #expect(Array(body.prefix(4)) == Array("TSJX".utf8))
        let parsed = try RecompressedFile.parse(body)
        #expect(parsed == made)
        #expect(try parsed.rebuild(length: file.count) == file)
    }

    @Test func aFileThatSavesTooLittleIsSentAsItIs() throws {
        let (file, range) = try Self.wrapped()
        #expect(try RecompressedFile.make(file: file, jpegRange: range, minSaving: 0.9) == nil)
    }

    @Test func damagedBodiesAreRefusedWithTheirReason() throws {
        let (file, range) = try Self.wrapped()
        let body = try #require(try RecompressedFile.make(file: file, jpegRange: range)).encoded()
        func refusal(_ b: [UInt8], length: Int? = nil) -> String? {
            do {
                _ = try RecompressedFile.parse(b).rebuild(length: length ?? file.count)
                return nil
            } catch { return error.message }
        }
        var badMagic = body; badMagic[0] = 0x58
        #expect(refusal(badMagic)?.contains("TSJX") == true)
        var badVersion = body; badVersion[4] = 2
        #expect(refusal(badVersion)?.contains("version 2") == true)
        #expect(refusal(Array(body.dropLast()))?.contains("do not add up") == true)
        #expect(refusal(Array(body.prefix(10)))?.contains("TSJX") == true)
        #expect(refusal(body, length: file.count - 1) != nil)
        #expect(refusal(body, length: 10)?.contains("no room") == true)
        // A byte of the JPEG XL stream flipped: refused by libjxl, or rebuilt
        // into other bytes, which the hub's SHA-256 check then refuses.
        var flipped = body; flipped[body.count / 2] ^= 0x10
        if let rebuilt = try? RecompressedFile.parse(flipped).rebuild(length: file.count) {
            #expect(rebuilt != file)
        }
    }

    @Test func aRangeOutsideTheFileIsRefused() throws {
        let (file, _) = try Self.wrapped()
        #expect(throws: RecompressionError.self) { try RecompressedFile.make(file: file, jpegRange: 10..<(file.count + 1)) }
    }
}
