import Foundation
import Testing
import Station

/// Control API request bodies as the kiosk (or anything on its port) sends
/// them. The first byte picks the endpoint: even for `POST /api/v1/captures`
/// (`CaptureRequestValidator.validate`), odd for `POST /api/v1/uploads`
/// (`uploadControl`). Bodies are generated JSON (known and unknown fields,
/// wrong types, huge and deeply nested values, unicode, escapes, lone
/// surrogates) and byte mutations of them.
///
/// Properties: no crash; either a request that satisfies the rules (a
/// normalised case id the policy accepts, a known body site, a trimmed note
/// of at most 1000 characters without control characters) or a 4xx error
/// that names the field or the body.
@Suite(.serialized) struct KioskRequestFuzz {
    static let validator = CaptureRequestValidator()
    static let fieldWords = ["case_id", "case id", "site", "note", "priority", "action", "rate", "request body", "field"]

    static func check(_ input: [UInt8]) throws -> String {
        let body = Data(input.dropFirst())
        let capture = (input.first ?? 0) % 2 == 0
        do {
            if capture {
                let r = try validator.validate(json: body)
                guard !r.caseId.isEmpty, r.caseId.count <= 32, (try? validator.caseIds.normalize(r.caseId)) == r.caseId else {
                    throw Fuzz.Violation("accepted case id \(r.caseId.debugDescription)")
                }
                guard BodySite(rawValue: r.site) != nil else { throw Fuzz.Violation("accepted site \(r.site.debugDescription)") }
                guard r.note.count <= CaptureRequestValidator.maxNoteCharacters, r.note == r.note.trimmingCharacters(in: .whitespacesAndNewlines),
                      !r.note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }) else {
                    throw Fuzz.Violation("accepted note \(r.note.prefix(80).debugDescription) (\(r.note.count) characters)")
                }
                return r.note.isEmpty ? "capture accepted" : "capture accepted with note"
            } else {
                switch try CaptureRequestValidator.uploadControl(json: body) {
                case .pause: return "pause"
                case .resume: return "resume"
                case let .limit(n):
                    guard n >= 0 else { throw Fuzz.Violation("a negative rate \(n)") }
                    return "limit"
                }
            }
        } catch let e as StationError {
            guard [.badRequest, .invalidCaseId, .dniCheckMismatch, .payloadTooLarge].contains(e.code) else { throw Fuzz.Violation("a \(e.code) error: \(e)") }
            let text = e.message + " " + (e.nextStep ?? "")
            guard !e.message.isEmpty, fieldWords.contains(where: { text.contains($0) }) else {
                throw Fuzz.Violation("the error names no field: \(e.description.prefix(200).debugDescription)")
            }
            return (capture ? "capture: " : "uploads: ") + outcomeLabel(e.message.replacingOccurrences(of: #""[^"]*""#, with: "\"…\"", options: .regularExpression), limit: 40)
        }
    }

    // MARK: Generated bodies

    static let caseIds = ["45871236", "hc 004512", "HC-004512", "004512-2023", "CE-001234567", " ce A1234567B ", "", "   ", "ABC",
                          "4587123X", "HC-", "12345678901", "1234;DROP", "٤٥٨٧١٢٣٦", "４５８７１２３６", "45871236\n", "HC\u{0}1", "ǅ1", "ß1", "ﬀ12"]
    static let strings = ["", " ", "face", "arm_left", "FACE", "face ", "routine", "urgent", "pause", "resume", "limit", "64kbit",
                          "16KiB/s", "unlimited", "-1kbit", "99999999999999999999GiB/s", "1e999", "é", "🙂", "\u{202E}", "\u{FEFF}"]
    static let escapes = ["\\n", "\\t", "\\u0000", "\\u001b[31m", "\\ud800", "\\udfff", "\\ud83d\\ude42", "\\\"", "\\\\", "\\/", "\\x41", "\\u12"]
    static let keys = ["case_id", "site", "note", "priority", "action", "rate", "caseId", "__proto__", "", "é", "case_id\\u0000"]

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Strings at and around the length limits (case id 32, note 1000, body 16 KiB).
    static let long: [String] = ["1", "a", " ", "é", "🙂", "\n"].flatMap { c in
        [31, 32, 33, 999, 1000, 1001, 5000, 17000].map { jsonString(String(repeating: c, count: $0)) }
    }
    /// Deeply nested arrays and objects, within and past the body limit.
    static let nested: [String] = [10, 100, 512, 513, 1000, 5000, 8100].flatMap { n in
        [("[", "]"), ("{\"a\":", "}")].map { String(repeating: $0.0, count: n) + "1" + String(repeating: $0.1, count: n) }
    }

    static func value(_ rng: inout SplitMix, depth: Int = 0) -> String {
        switch rng.below(depth > 2 ? 9 : 12) {
        case 0: return jsonString(rng.pick(caseIds))
        case 1: return jsonString(rng.pick(strings))
        case 2: return "\"" + (0..<1 + rng.below(4)).map { _ in rng.chance(2) ? rng.pick(escapes) : rng.pick(["a", "1", " ", "é", "-"]) }.joined() + "\""
        case 3: return rng.pick(long)
        case 4: return rng.pick(["0", "-1", "1.5", "1e999", "-0", "9223372036854775807", "9223372036854775808", "1e-400", "0x10", "01", "NaN", "Infinity"])
        case 5: return rng.pick(["true", "false", "null"])
        case 6: return "\(rng.next() % 100_000_000)"
        case 7: return rng.pick(nested)
        case 8: return jsonString(rng.pick(caseIds) + rng.pick(strings))
        case 9: return "[" + (0..<rng.below(4)).map { _ in value(&rng, depth: depth + 1) }.joined(separator: ",") + "]"
        default: return object(&rng, depth: depth + 1)
        }
    }

    static func object(_ rng: inout SplitMix, depth: Int = 0) -> String {
        var fields: [String] = []
        for k in keys.prefix(6) where rng.below(4) != 0 { fields.append(jsonString(k) + ":" + value(&rng, depth: depth)) }
        if rng.chance(4) { fields.append(jsonString(rng.pick(keys)) + ":" + value(&rng, depth: depth)) }
        fields.shuffle(using: &rng)
        return "{" + fields.joined(separator: rng.pick([",", ", ", " ,\n"])) + "}"
    }

    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix, _ pool: [[UInt8]]) {
        if rng.chance(3) {
            let endpoint = bytes.first ?? 0
            bytes = [endpoint] + Array(object(&rng).utf8)
        } else {
            let first = bytes.first
            ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: dictionary)
            // Keep the endpoint byte mostly stable, so both endpoints get mutated bodies.
            if let first, !bytes.isEmpty, !rng.chance(8) { bytes[0] = first }
        }
    }

    static let dictionary = ByteMutator.tokens(keys.map { jsonString($0) + ":" } + strings.map(jsonString) + escapes + [
        "{", "}", "[", "]", ",", ":", "\"", "null", "true", "1e999", "-", "\u{0}", "\u{FEFF}", "é", "\\u00e9", "//", "/*", "'",
    ])

    static let seeds: [[UInt8]] = [
        [0] + Array(#"{"case_id": "45871236", "site": "arm_left", "note": "lesión en antebrazo, 2 cm", "priority": "urgent"}"#.utf8),
        [0] + Array(#"{"case_id": "hc 004512", "site": "face"}"#.utf8),
        [0] + Array(#"{"case_id": "CE-001234567", "site": "other", "note": null, "priority": null}"#.utf8),
        [0] + Array(#"[]"#.utf8),
        [1] + Array(#"{"action": "pause"}"#.utf8),
        [1] + Array(#"{"action": "limit", "rate": "64kbit"}"#.utf8),
        [1] + Array(#"{"action": "limit", "rate": 16384}"#.utf8),
        [1] + Array(#"{"action": "resume", "rate": null}"#.utf8),
    ]

    @Test func kioskRequests() {
        let f = Fuzz.run("kiosk-request", short: 20_000, seeds: Self.seeds, mutate: Self.mutate, check: Self.check)
        #expect(f.violations == 0)
        for outcome in ["capture accepted", "capture accepted with note", "pause", "resume", "limit"] {
            #expect(f.outcomes[outcome, default: 0] > 0, "no input gave \(outcome)")
        }
        #expect(f.outcomes.keys.filter { $0.hasPrefix("capture: ") }.count >= 8)
    }
}
