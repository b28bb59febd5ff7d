import Basics
import Foundation
import Hub
import Imaging
import Testing
import Uplink

/// Inputs with which the campaign found a bug, replayed through the same
/// checks on every test run. (The config parser's are in ConfigTests.)
@Suite struct FuzzRegressions {
    /// `MJPEG.prepare` reported the frame header's old offset after putting
    /// the Huffman tables in front of it. Found on the unmutated UVC-style seeds.
    @Test func preparedFramesDescribeTheirOwnBytes() {
        let uvcFrames = JPEGFuzz.frames.map { JPEGFuzz.stripTables($0.jpeg) }
        Fuzz.replay(uvcFrames + uvcFrames.map { $0 + [UInt8](repeating: 0, count: 37) }, check: JPEGFuzz.check)
    }

    /// A PATCH answered with the offset it started from was taken as
    /// progress: the client sent the same chunk again at once, with no
    /// backoff, for as long as the hub kept answering so.
    @Test func aPatchThatGainsNothingIsNotProgress() {
        Fuzz.replay([
            Array("patch 1665 1928 3593\nhttps://hub.example.org/files/\nhttps://hub.example.org/files/\nHTTP/1.1 201 Created\nUpload-Offset: 1665\r\n\r\n".utf8),
            Array("patch 0 4000 4000\nhttp://127.0.0.1:1080/files/\nhttp://127.0.0.1:1080/files/abc\nHTTP/1.1 204 No Content\nUpload-Offset: 0\r\n\r\n".utf8),
        ], check: TusResponseFuzz.check)
        let r = TusResponse(status: 204, headers: ["Upload-Offset": "100"])
        let v = TusRules.verdict(for: .patch(from: 100, sent: 50, length: 1000), response: r, requestURL: "https://h/f/a", hubURL: "https://h/f/")
        guard case let .violation(m) = v else { Issue.record("\(v)"); return }
        #expect(m.contains("none of the 50 bytes"))
    }

    /// Foundation's DateFormatter traps on some non-ASCII text: a hub (or
    /// anything between) could kill the station with one Retry-After header
    /// (and `diagnose` with one Date header). Found at seed 1795449075.
    @Test func aNonASCIIDateIsNotADateAndNotACrash() {
        Fuzz.replay([
            Array("patch 3936 3746 2450\nhttps://hub.example.org/files/\nhttps://hub.example.org/files/abc\nHTTP/1.1 503 Service Unavailable\nRetry-After: Fri, 15 Jan 2027 08:00:\u{0657}00 GMT\r\n\r\n".utf8),
        ], check: TusResponseFuzz.check)
        for text in ["Fri, 15 Jan 2027 08:00:\u{0657}00 GMT", "Fri, 15 Jan 2027 08:00:00 GMT\u{301}", "Fri, 15 Jan 2027 08:00:00 GMT\u{0}", "Fri, ١٥ Jan 2027 08:00:00 GMT"] {
            #expect(HTTPDate.parse(text) == nil)
            #expect(TusRules.parseRetryAfter(text) == nil)
        }
        // An ASCII date still parses.
        #expect(HTTPDate.parse("Fri, 15 Jan 2027 08:00:00 GMT") == Date(timeIntervalSince1970: 1_800_000_000))
    }

    /// The hub decoded a value with a leading byte order mark without it
    /// (Foundation's UTF-8 decoding drops it), so what it stored differed
    /// from what the station sent.
    @Test func aLeadingByteOrderMarkSurvivesTheHubsDecoder() {
        Fuzz.replay([
            [2, 0, 0, 0] + Array("\u{FEFF}case ".utf8),  // the station's file name
            [2, 0, 0] + Array("\u{FEFF}".utf8),          // its station id
            [1] + Array("k\u{0}\u{FEFF}v".utf8),         // the hub's own encoder
        ], check: MetadataFuzz.check)
        #expect(TusMetadata.parse("filename 77u/Y2FzZSA=") == .success(["filename": "\u{FEFF}case "]))
        // Still refused: bytes that are not UTF-8.
        #expect(throws: TusMetadata.Invalid.self) { try TusMetadata.parse("k /w==").get() }
    }
}
