import Foundation
import Testing
@testable import Imaging

@Suite struct JPEGValidationTests {
    func sampleJPEG(width: Int = 64, height: Int = 48) throws -> Data {
        let rgb = TestImages.barsRGB(width: width, height: height)
        return try rgb.withUnsafeBytes { raw in
            try JPEGEncoder(quality: 90).encode(RawFrameView(format: .rgb24, width: width, height: height, bytes: raw))
        }
    }

    @Test func readsTheHeaderOfARealJPEG() throws {
        let info = try JPEG.validate(try sampleJPEG(width: 64, height: 48))
        #expect(info.width == 64)
        #expect(info.height == 48)
        #expect(info.components == 3)
        #expect(info.bitsPerPixel == 24)
        #expect(info.hasHuffmanTables)
        #expect(!info.progressive)
    }

    @Test func refusesDataThatIsNotAJPEG() {
        for (bytes, fragment) in [([UInt8](), "only 0 bytes"), ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A], "SOI"),
                                  ([0xFF, 0xD8, 0xFF, 0xD9], "before any scan")] {
            #expect {
                try JPEG.validate(Data(bytes))
            } throws: { e in
                let e = e as! ImagingError
                return e.code == .invalidJPEG && e.message.contains(fragment)
            }
        }
    }

    @Test func refusesATruncatedFrame() throws {
        let jpeg = try sampleJPEG()
        #expect {
            try JPEG.validate(jpeg.prefix(jpeg.count - 10))
        } throws: { e in
            (e as! ImagingError).message.contains("EOI")
        }
    }

    @Test func acceptsZeroPaddingAfterEOIButReportsTheRealLength() throws {
        let jpeg = try sampleJPEG()
        let info = try JPEG.validate(jpeg + Data(repeating: 0, count: 100))
        #expect(info.length == jpeg.count)
    }

    @Test func refusesAScanBeforeTheFrameHeader() {
        let bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x00, 0xFF, 0xD9]
        #expect(throws: ImagingError.self) { try JPEG.validate(Data(bytes)) }
    }
}

@Suite struct MJPEGTests {
    /// Removes every DHT segment, as a UVC camera's frames come.
    static func stripHuffmanTables(_ jpeg: Data) -> (stripped: Data, tables: [[UInt8]]) {
        let b = [UInt8](jpeg)
        var out: [UInt8] = [0xFF, 0xD8]
        var tables: [[UInt8]] = []
        var i = 2
        while i < b.count {
            let marker = b[i + 1]
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if marker == 0xDA { out += b[i...]; break }
            if marker == 0xC4 { tables.append(Array(b[(i + 4)..<(i + 2 + len)])) } else { out += b[i..<(i + 2 + len)] }
            i += 2 + len
        }
        return (Data(out), tables)
    }

    func bars() throws -> Data {
        let (w, h) = (128, 64)
        let raw = TestImages.raw(TestImages.barsRGB(width: w, height: h), width: w, height: h, format: .yuyv)
        return try raw.withUnsafeBytes { try JPEGEncoder(quality: 85).encode(RawFrameView(format: .yuyv, width: w, height: h, bytes: $0)) }
    }

    @Test func theStandardTablesAreTheOnesLibjpegTurboWrites() throws {
        // TurboJPEG (without optimisation) codes with the Annex K tables; its
        // DHT segments are therefore an independent copy of them.
        let (_, tables) = Self.stripHuffmanTables(try bars())
        let theirs = tables.flatMap { $0 }
        let ours = Array(MJPEG.standardTablesSegment.dropFirst(4))
        // Same four tables, possibly in a different order.
        func split(_ bytes: [UInt8]) -> [UInt8: [UInt8]] {
            var out: [UInt8: [UInt8]] = [:]
            var i = 0
            while i < bytes.count {
                let n = bytes[(i + 1)...(i + 16)].reduce(0) { $0 + Int($1) }
                out[bytes[i]] = Array(bytes[i..<(i + 17 + n)])
                i += 17 + n
            }
            return out
        }
        #expect(split(ours).count == 4)
        #expect(split(ours) == split(theirs))
    }

    @Test func insertsTablesIntoAFrameThatHasNoneAndItDecodesIdentically() throws {
        let original = try bars()
        let (stripped, _) = Self.stripHuffmanTables(original)
        #expect(try JPEG.validate(stripped).hasHuffmanTables == false)

        let fixed = MJPEG.insertHuffmanTablesIfMissing(stripped)
        let info = try JPEG.validate(fixed)
        #expect(info.hasHuffmanTables)
        #expect(fixed.count == stripped.count + MJPEG.standardTablesSegment.count)
        let decoder = try JPEGDecoder()
        #expect(try decoder.decode(fixed).pixels == decoder.decode(original).pixels)
    }

    /// Found by the fuzz campaign (FuzzTests.JPEGFuzz): `prepare` reported
    /// the frame header where it was before the tables went in front of it.
    @Test func prepareDescribesTheBytesItReturns() throws {
        let (stripped, _) = Self.stripHuffmanTables(try bars())
        for frame in [stripped, stripped + Data(repeating: 0, count: 37)] {
            let (jpeg, info) = try MJPEG.prepare(frame)
            #expect(try JPEG.validate(jpeg) == info)
            #expect(jpeg[info.frameHeaderOffset] == 0xFF && jpeg[info.frameHeaderOffset + 1] == 0xC0)
        }
    }

    @Test func leavesAFrameWithTablesAloneApartFromPadding() throws {
        let original = try bars()
        #expect(MJPEG.insertHuffmanTablesIfMissing(original) == original)
        #expect(MJPEG.insertHuffmanTablesIfMissing(original + Data([0, 0, 0])) == original)
    }

    @Test func prepareRefusesADamagedFrame() throws {
        let original = try bars()
        #expect(throws: ImagingError.self) { try MJPEG.prepare(original.prefix(original.count / 2)) }
    }
}

@Suite struct EncoderTests {
    /// Encodes bars in `format`, decodes with TurboJPEG, and checks size and
    /// each bar's colour at its centre.
    func roundTrip(_ format: RawPixelFormat, width: Int = 320, height: Int = 240, padding: Int = 0,
                   range: YCbCrRange = .full, encoder: JPEGEncoder? = nil) throws {
        let bpl = format.minimumBytesPerLine(width: width) + padding
        let raw = TestImages.raw(TestImages.barsRGB(width: width, height: height), width: width, height: height,
                                 format: format, bytesPerLine: bpl, range: range)
        let enc = try encoder ?? JPEGEncoder(quality: 92)
        let jpeg = try raw.withUnsafeBytes {
            try enc.encode(RawFrameView(format: format, width: width, height: height, bytesPerLine: bpl, range: range, bytes: $0))
        }
        let info = try JPEG.validate(jpeg)
        #expect(info.width == width && info.height == height && info.components == 3)
        let image = try JPEGDecoder().decode(jpeg)
        #expect(image.width == width && image.height == height)
        for (i, expected) in TestImages.bars.enumerated() {
            let got = image.rgb(x: (2 * i + 1) * width / 16, y: height / 2)
            for (a, b) in [(got.r, expected.0), (got.g, expected.1), (got.b, expected.2)] {
                #expect(abs(Int(a) - Int(b)) <= 6, "\(format) bar \(i): got \(got), expected \(expected)")
            }
        }
    }

    @Test(arguments: RawPixelFormat.allCases) func roundTripsEveryFormat(_ format: RawPixelFormat) throws {
        try roundTrip(format)
    }

    @Test(arguments: [RawPixelFormat.yuyv, .nv12, .yu12]) func honoursRowPadding(_ format: RawPixelFormat) throws {
        try roundTrip(format, padding: 64)
    }

    @Test(arguments: [RawPixelFormat.yuyv, .nv12, .yu12]) func expandsLimitedRangeToFullRange(_ format: RawPixelFormat) throws {
        // Black must come out black (0, not 16) and white white (255, not 235).
        try roundTrip(format, padding: 32, range: .limited)
    }

    @Test func limitedRangeLeftUnconvertedWouldBeWashedOut() throws {
        // The control for the test above: without expansion black is grey.
        let (w, h) = (64, 16)
        let raw = TestImages.raw(TestImages.grey(width: w, height: h) { _, _ in 0 }.flatMap { [$0, $0, $0] },
                                 width: w, height: h, format: .yuyv, range: .limited)
        let enc = try JPEGEncoder(quality: 95)
        let asFull = try raw.withUnsafeBytes { try enc.encode(RawFrameView(format: .yuyv, width: w, height: h, range: .full, bytes: $0)) }
        let asLimited = try raw.withUnsafeBytes { try enc.encode(RawFrameView(format: .yuyv, width: w, height: h, range: .limited, bytes: $0)) }
        #expect(try JPEGDecoder().decode(asFull).rgb(x: 32, y: 8).r >= 14)
        #expect(try JPEGDecoder().decode(asLimited).rgb(x: 32, y: 8).r <= 2)
    }

    @Test func oneEncoderServesFramesOfDifferentSizes() throws {
        let enc = try JPEGEncoder(quality: 92)
        try roundTrip(.yuyv, width: 640, height: 480, encoder: enc)
        try roundTrip(.yuyv, width: 128, height: 32, encoder: enc)
        // 65 chroma pairs per row: the odd one out takes the tail path.
        try roundTrip(.yuyv, width: 130, height: 32, padding: 6, encoder: enc)
        try roundTrip(.nv12, width: 640, height: 480, encoder: enc)
    }

    @Test(arguments: [2, 4, 130, 640]) func yuyvSplitMatchesTheByteLayout(_ width: Int) {
        // Every byte distinct-ish, padding rows, both the 8-byte loop and the odd tail.
        let height = 3, stride = width * 2 + 6
        let src = (0..<(stride * height)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var y = [UInt8](repeating: 0, count: width * height)
        var u = [UInt8](repeating: 0, count: width / 2 * height), v = u
        src.withUnsafeBufferPointer { s in
            Deinterleave.yuyv(s.baseAddress!, stride: stride, width: width, height: height,
                              y: &y, u: &u, v: &v)
        }
        for row in 0..<height {
            for x in 0..<width { #expect(y[row * width + x] == src[row * stride + 2 * x]) }
            for c in 0..<(width / 2) {
                #expect(u[row * width / 2 + c] == src[row * stride + 4 * c + 1])
                #expect(v[row * width / 2 + c] == src[row * stride + 4 * c + 3])
            }
        }
    }

    @Test func qualityChangesTheFileSize() throws {
        let (w, h) = (256, 256)
        // Noise-like texture so quantisation matters.
        var rng = SystemRandomNumberGenerator()
        let rgb = (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let small = try rgb.withUnsafeBytes { try JPEGEncoder(quality: 30).encode(RawFrameView(format: .rgb24, width: w, height: h, bytes: $0)) }
        let large = try rgb.withUnsafeBytes { try JPEGEncoder(quality: 95).encode(RawFrameView(format: .rgb24, width: w, height: h, bytes: $0)) }
        #expect(small.count < large.count / 2)
    }

    @Test func refusesAShortBufferWithTheSizesInTheMessage() throws {
        let raw = [UInt8](repeating: 0, count: 100)
        #expect {
            try raw.withUnsafeBytes { try JPEGEncoder(quality: 90).encode(RawFrameView(format: .yuyv, width: 64, height: 48, bytes: $0)) }
        } throws: { e in
            let e = e as! ImagingError
            return e.code == .invalidFrame && e.message.contains("6144") && e.message.contains("100")
        }
    }

    @Test func refusesAQualityOutOfRange() {
        #expect(throws: ImagingError.self) { try JPEGEncoder(quality: 0) }
        #expect(throws: ImagingError.self) { try JPEGEncoder(quality: 101) }
    }
}

@Suite struct PreviewTests {
    @Test func previewIsTheRequestedWidthWithTheSameAspectAndColours() throws {
        let (w, h) = (1920, 1080)
        let raw = TestImages.raw(TestImages.barsRGB(width: w, height: h), width: w, height: h, format: .yuyv)
        let jpeg = try raw.withUnsafeBytes { try JPEGEncoder(quality: 92).encode(RawFrameView(format: .yuyv, width: w, height: h, bytes: $0)) }
        let preview = try Preview.make(fromJPEG: jpeg, width: 480)
        let info = try JPEG.validate(preview)
        #expect(info.width == 480 && info.height == 270)
        #expect(preview.count < jpeg.count)
        let image = try JPEGDecoder().decode(preview)
        for (i, hue) in TestImages.barHues.enumerated() {
            guard let hue else { continue }
            let got = TestImages.hue(image.rgb(x: (2 * i + 1) * 480 / 16, y: 135))
            #expect(got.map { TestImages.hueDistance($0, hue) < 10 } == true, "bar \(i)")
        }
    }

    @Test func aNarrowImageKeepsItsSize() throws {
        let rgb = TestImages.barsRGB(width: 200, height: 100)
        let jpeg = try rgb.withUnsafeBytes { try JPEGEncoder(quality: 90).encode(RawFrameView(format: .rgb24, width: 200, height: 100, bytes: $0)) }
        let info = try JPEG.validate(try Preview.make(fromJPEG: jpeg, width: 480))
        #expect(info.width == 200 && info.height == 100)
    }

    @Test func thumbnailOfARawFrameMatchesTheDecodedColours() throws {
        let (w, h) = (640, 480)
        for format in [RawPixelFormat.yuyv, .nv12, .yu12] {
            let raw = TestImages.raw(TestImages.barsRGB(width: w, height: h), width: w, height: h, format: format)
            let thumb = try raw.withUnsafeBytes { try Preview.thumbnail(of: RawFrameView(format: format, width: w, height: h, bytes: $0), width: 160) }
            #expect(thumb.width == 160 && thumb.height == 120)
            for (i, c) in TestImages.bars.enumerated() {
                let got = thumb.rgb(x: (2 * i + 1) * 10, y: 60)
                #expect(abs(Int(got.r) - Int(c.0)) <= 4 && abs(Int(got.g) - Int(c.1)) <= 4 && abs(Int(got.b) - Int(c.2)) <= 4,
                        "\(format) bar \(i): \(got)")
            }
        }
    }
}

@Suite struct QualityTests {
    func metrics(_ pixels: [UInt8], _ w: Int, _ h: Int) -> QualityMetrics {
        QualityMetrics.measure(DecodedImage(width: w, height: h, channels: 1, pixels: pixels))
    }

    @Test func blackIsTooDarkAndWhiteIsOverexposed() {
        let black = metrics(TestImages.grey(width: 64, height: 64) { _, _ in 0 }, 64, 64)
        #expect(black.flags.contains(.tooDark) && !black.flags.contains(.overexposed))
        #expect(black.meanLuminance == 0 && black.darkClippedFraction == 1)
        let white = metrics(TestImages.grey(width: 64, height: 64) { _, _ in 255 }, 64, 64)
        #expect(white.flags.contains(.overexposed) && !white.flags.contains(.tooDark))
        #expect(white.brightClippedFraction == 1)
    }

    @Test func aSharpPatternPassesAndItsBlurredCopyIsFlagged() {
        let (w, h) = (128, 128)
        let sharp = TestImages.grey(width: w, height: h) { x, y in ((x / 4 + y / 4) % 2 == 0) ? 60 : 190 }
        // A wide box blur of the same pattern.
        var blurred = sharp
        let r = 6
        for y in 0..<h {
            for x in 0..<w {
                var s = 0, n = 0
                for yy in max(0, y - r)...min(h - 1, y + r) {
                    for xx in max(0, x - r)...min(w - 1, x + r) { s += Int(sharp[yy * w + xx]); n += 1 }
                }
                blurred[y * w + x] = UInt8(s / n)
            }
        }
        let a = metrics(sharp, w, h), b = metrics(blurred, w, h)
        #expect(a.flags.isEmpty, "\(a)")
        #expect(b.flags == [.blurred], "\(b)")
        #expect(a.laplacianVariance > 50 * b.laplacianVariance)
    }

    @Test func laplacianVarianceOfAKnownImage() {
        // One bright pixel on a flat field: the Laplacian is -4v at the pixel
        // and +v at its four neighbours, zero elsewhere.
        let (w, h) = (5, 5)
        var px = [UInt8](repeating: 100, count: w * h)
        px[2 * w + 2] = 110
        let m = metrics(px, w, h)
        // Interior 3×3: values -40 once, +10 four times, 0 four times.
        let values: [Double] = [-40, 10, 10, 10, 10, 0, 0, 0, 0]
        let mean = values.reduce(0, +) / 9
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 9
        #expect(abs(m.laplacianVariance - variance) < 1e-9)
    }

    @Test func floorWarnsAboutSmallGreyOverCompressedImages() {
        let floor = QualityFloor()
        #expect(floor.check(width: 1920, height: 1080, bitsPerPixel: 24, jpegBytes: 400_000).isEmpty)
        #expect(floor.check(width: 600, height: 800, bitsPerPixel: 24, jpegBytes: nil).isEmpty)
        #expect(floor.check(width: 640, height: 480, bitsPerPixel: 24, jpegBytes: nil).map(\.code) == [.resolution])
        #expect(floor.check(width: 1280, height: 720, bitsPerPixel: 8, jpegBytes: nil).map(\.code) == [.colourDepth])
        // 1920×1080×3 / 20 = 311 040 bytes is the limit.
        #expect(floor.check(width: 1920, height: 1080, bitsPerPixel: 24, jpegBytes: 311_040).isEmpty)
        #expect(floor.check(width: 1920, height: 1080, bitsPerPixel: 24, jpegBytes: 300_000).map(\.code) == [.compression])
    }
}

@Suite struct StillProcessorTests {
    @Test func keepsTheCamerasOwnJPEGBytes() throws {
        let (w, h) = (1024, 768)
        let raw = TestImages.raw(TestImages.barsRGB(width: w, height: h), width: w, height: h, format: .yuyv)
        let camera = try raw.withUnsafeBytes { try JPEGEncoder(quality: 75).encode(RawFrameView(format: .yuyv, width: w, height: h, bytes: $0)) }
        let (stripped, _) = MJPEGTests.stripHuffmanTables(camera)
        let p = try StillProcessor(jpegQuality: 92, previewWidth: 320)
        let still = try p.process(mjpeg: stripped)
        #expect(still.cameraEncoded)
        #expect(still.jpeg == MJPEG.insertHuffmanTablesIfMissing(stripped))
        #expect(still.info.width == w && still.info.height == h)
        #expect(try JPEG.validate(still.preview).width == 320)
        // Flat bars compress far beyond 20:1, which the camera chose.
        #expect(still.warnings.map(\.code) == [.compression])
    }

    @Test func encodesRawFramesAndMeasuresThem() throws {
        let (w, h) = (800, 600)
        let raw = TestImages.raw(TestImages.barsRGB(width: w, height: h), width: w, height: h, format: .nv12)
        let p = try StillProcessor(jpegQuality: 92, previewWidth: 480)
        let still = try raw.withUnsafeBytes { try p.process(RawFrameView(format: .nv12, width: w, height: h, bytes: $0)) }
        #expect(!still.cameraEncoded)
        #expect(still.info.width == 800 && still.info.height == 600)
        #expect(still.warnings.isEmpty)
        #expect(still.metrics.flags.isEmpty, "\(still.metrics)")
        // Bars are 1/8 white, 1/8 black and the rest in between.
        #expect(abs(still.metrics.darkClippedFraction - 0.125) < 0.03)
    }
}

@Suite struct DeinterleaveTests {
    typealias Split = (UnsafePointer<UInt8>, Int, Int, Int, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void

    /// Runs a split over a frame whose bytes take every value, with row padding.
    static func split(width: Int, height: Int, padding: Int, _ f: Split) -> (src: [UInt8], stride: Int, y: [UInt8], u: [UInt8], v: [UInt8]) {
        let stride = width * 2 + padding
        let src = (0..<(stride * height)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        let cw = width / 2
        var y = [UInt8](repeating: 0, count: width * height)
        var u = [UInt8](repeating: 0, count: cw * height), v = u
        src.withUnsafeBufferPointer { s in
            y.withUnsafeMutableBufferPointer { yp in
                u.withUnsafeMutableBufferPointer { up in
                    v.withUnsafeMutableBufferPointer { vp in f(s.baseAddress!, stride, width, height, yp.baseAddress!, up.baseAddress!, vp.baseAddress!) }
                }
            }
        }
        return (src, stride, y, u, v)
    }

    /// The vectorised split against the definition, byte by byte, at widths
    /// around its 16-pixel steps, with and without row padding; the
    /// limited-range split also through the expansion tables.
    @Test(arguments: [2, 6, 14, 16, 18, 30, 32, 34, 50, 1920])
    func yuyvSplitMatchesTheDefinition(width: Int) {
        let height = 3, cw = width / 2
        for padding in [0, 6] {
            let plain = Self.split(width: width, height: height, padding: padding) { Deinterleave.yuyv($0, stride: $1, width: $2, height: $3, y: $4, u: $5, v: $6) }
            let expanded = Self.split(width: width, height: height, padding: padding) { Deinterleave.yuyvExpanding($0, stride: $1, width: $2, height: $3, y: $4, u: $5, v: $6) }
            let (src, stride) = (plain.src, plain.stride)
            for row in 0..<height {
                for x in 0..<width {
                    let s = src[row * stride + x * 2]
                    #expect(plain.y[row * width + x] == s, "Y at \(x),\(row), width \(width), padding \(padding)")
                    #expect(expanded.y[row * width + x] == RangeExpansion.luma[Int(s)], "limited Y at \(x),\(row), width \(width), padding \(padding)")
                }
                for c in 0..<cw {
                    let (su, sv) = (src[row * stride + c * 4 + 1], src[row * stride + c * 4 + 3])
                    #expect(plain.u[row * cw + c] == su, "U at \(c),\(row), width \(width)")
                    #expect(plain.v[row * cw + c] == sv, "V at \(c),\(row), width \(width)")
                    #expect(expanded.u[row * cw + c] == RangeExpansion.chroma[Int(su)], "limited U at \(c),\(row), width \(width)")
                    #expect(expanded.v[row * cw + c] == RangeExpansion.chroma[Int(sv)], "limited V at \(c),\(row), width \(width)")
                }
            }
        }
    }

    /// The tables (and so the vector loop) against the exact BT.601 range
    /// stretch: ends and neutral grey exact, every value within 1.2.
    @Test func rangeExpansionIsTheStandardStretch() {
        #expect(RangeExpansion.luma[16] == 0 && RangeExpansion.luma[235] == 255 && RangeExpansion.luma[0] == 0 && RangeExpansion.luma[255] == 255)
        #expect(RangeExpansion.chroma[16] == 0 && RangeExpansion.chroma[240] == 255 && RangeExpansion.chroma[128] == 128)
        for v in 0..<256 {
            let y = min(255, max(0, (Double(v) - 16) * 255 / 219)), c = min(255, max(0, (Double(v) - 128) * 255 / 224 + 128))
            #expect(abs(Double(RangeExpansion.luma[v]) - y) <= 1.2, "Y \(v) → \(RangeExpansion.luma[v]), exact \(y)")
            #expect(abs(Double(RangeExpansion.chroma[v]) - c) <= 1.2, "C \(v) → \(RangeExpansion.chroma[v]), exact \(c)")
        }
    }
}
