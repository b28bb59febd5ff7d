import Foundation
import Testing
import Hub
import Uplink

/// `Upload-Metadata` between station and hub. The first byte of an input
/// picks what it is:
/// - 0: a header value as a hub receives it: the hub's decoder either gives
///   pairs whose keys are valid tus keys and which survive re-encoding, or
///   an error naming the header — never a crash;
/// - 1: key/value strings separated by NUL bytes: the hub's encoder and
///   decoder round-trip every set of valid keys with any values;
/// - 2: the station's fields (case id, site, station, file name, priority,
///   file type) separated by NUL bytes: what the station sends is exactly
///   what the hub decodes, whatever the values (empty, non-ASCII, commas, spaces).
@Suite(.serialized) struct MetadataFuzz {
    /// tus 1.0: a key is ASCII without spaces or commas (controls below space are refused too).
    static func isTusKey(_ k: String) -> Bool {
        !k.isEmpty && k.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0 != "," }
    }

    static func check(_ input: [UInt8]) throws -> String {
        let mode = (input.first ?? 0) % 3
        let rest = Array(input.dropFirst())
        switch mode {
        case 0:
            let header = String(decoding: rest, as: UTF8.self)
            switch TusMetadata.parse(header) {
            case let .success(pairs):
                guard pairs.keys.allSatisfy(isTusKey) else { throw Fuzz.Violation("accepted a key that is not a tus key: \(pairs.keys.sorted())") }
                guard case let .success(again) = TusMetadata.parse(TusMetadata.encode(pairs)), again == pairs else {
                    throw Fuzz.Violation("decoded pairs do not survive re-encoding: \(pairs)")
                }
                return pairs.isEmpty ? "decoded nothing" : "decoded"
            case let .failure(e):
                // HTTP cannot carry CR or LF inside a header value; anything else must stay one line.
                guard e.message.hasPrefix("Upload-Metadata"), header.contains(where: \.isNewline) || !e.message.contains(where: \.isNewline) else {
                    throw Fuzz.Violation("the error does not name the header in one line: \(e.message.debugDescription)")
                }
                return "refused: " + outcomeLabel(e.message, limit: 36)
            }
        case 1:
            let parts = rest.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            var pairs: [String: String] = [:]
            for i in stride(from: 0, to: parts.count - 1, by: 2) where pairs[parts[i]] == nil { pairs[parts[i]] = parts[i + 1] }
            let header = TusMetadata.encode(pairs)
            let decoded = TusMetadata.parse(header)
            // The hub encodes only what it decoded, so only valid keys carry a promise.
            guard pairs.keys.allSatisfy(isTusKey) else { return "invalid keys" }
            guard case let .success(back) = decoded, back == pairs else {
                throw Fuzz.Violation("\(pairs) encoded as \(header.debugDescription) decodes as \(decoded)")
            }
            return pairs.isEmpty ? "round trip, empty" : "round trip"
        default:
            var f = rest.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            while f.count < 6 { f.append("") }
            let m = UploadMetadata(filename: f[3], filetype: f[5], station: f[2], caseID: f[0], site: f[1], priority: f[4],
                                   kind: f[0].count % 2 == 0 ? .image : .preview, capturedAt: Date(timeIntervalSince1970: Double(rest.count) * 1e6),
                                   sha256: String(repeating: "ab", count: 32))
            let header = m.headerValue
            let decoded = TusMetadata.parse(header)
            let sent = Dictionary(m.pairs, uniquingKeysWith: { a, _ in a })
            guard case let .success(got) = decoded, got == sent else {
                throw Fuzz.Violation("the station sent \(sent) as \(header.debugDescription); the hub decodes \(decoded)")
            }
            return "station to hub"
        }
    }

    static let seeds: [[UInt8]] = [
        [0] + Array("filename cGhvdG8uanBn,filetype aW1hZ2UvanBlZw==,case SEMtMDA0NTEy,empty".utf8),
        [0] + Array("".utf8),
        [0] + Array("key dmFsdWU=, other  ,x".utf8),
        [1] + Array("filename\u{0}photo 1, final.jpg\u{0}case\u{0}HC-004512\u{0}note\u{0}\u{0}é\u{0}ñandú".utf8),
        [1] + Array("a\u{0}b".utf8),
        [2] + Array("HC-004512\u{0}arm_left\u{0}ps-01 Ñaña\u{0}20260101-a, b.jpg\u{0}urgent\u{0}image/jpeg".utf8),
        [2] + Array("\u{0}\u{0}\u{0}\u{0}\u{0}".utf8),
    ]

    static let dictionary = ByteMutator.tokens([
        ",", " ", "  ", ", ", "=", "==", "===", "\t", "\u{0}", "é", "🙂", "\u{FEFF}", "\r\n", "filename ", "case ", "aGVsbG8=",
        "aGVsbG8", "a GVs", "////", "++++", "-_", "wA==", "/w==", "gA==", "\u{7f}", "\u{85}", "\u{2028}",
    ])

    @Test func uploadMetadata() {
        let f = Fuzz.run("upload-metadata", short: 20_000, seeds: Self.seeds,
                         mutate: { bytes, rng, pool in ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: Self.dictionary) },
                         check: Self.check)
        #expect(f.violations == 0)
        for outcome in ["decoded", "round trip", "station to hub", "invalid keys"] {
            #expect(f.outcomes[outcome, default: 0] > 0, "no input gave \(outcome)")
        }
        #expect(f.outcomes.keys.contains { $0.hasPrefix("refused") })
    }
}
