import Config
import Foundation

/// Which case identifiers the kiosk accepts.
///
/// The default follows what Peruvian health posts write on a referral:
/// - a DNI, 8 digits — MINSA's norm on clinical records (NTS 139-MINSA/2018)
///   uses the patient's DNI as the clinical record (historia clínica) number;
/// - a local historia clínica number from before that norm or for patients
///   without a DNI: 1 to 10 digits, optionally `HC` in front and a year or
///   establishment suffix after a dash (`HC-004512`, `004512-2023`);
/// - a carné de extranjería: `CE` and 9 to 12 letters or digits.
/// Spaces are dropped and letters upper-cased before matching, so `hc 4512`
/// becomes `HC4512`. Other networks set their own pattern.
public struct CaseIdPolicy: Sendable {
    public static let peruDefaultPattern = #"^(?:\d{8}|(?:HC-?)?\d{1,10}(?:-\d{2,4})?|CE-?[A-Z0-9]{9,12})$"#

    public let pattern: String
    /// A human description of the accepted formats, shown with the error.
    public let formats: String
    private let regex: NSRegularExpression

    public init(pattern: String = CaseIdPolicy.peruDefaultPattern,
                formats: String = "DNI (8 digits), historia clínica number (e.g. HC-004512) or carné de extranjería (CE…)") throws(StationError) {
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw StationError(.badRequest, "the case id pattern \(pattern) is not a valid regular expression: \(error)",
                               nextStep: "fix the pattern (ICU regular expression syntax)")
        }
        self.pattern = pattern
        self.formats = formats
    }

    public static let peru = try! CaseIdPolicy()

    /// The policy `kiosk.case_id_pattern` asks for, or the default.
    public init(config: StationConfig) throws(StationError) {
        if let pattern = config.kiosk.caseIdPattern {
            try self.init(pattern: pattern, formats: "a case id matching \(pattern) (kiosk.case_id_pattern)")
        } else {
            try self.init()
        }
    }

    /// The case id as it will be stored, or an error saying which formats are accepted.
    /// A DNI given with its check character (`40123456-7`, `40123456K`) is
    /// checked against it and stored as its 8 digits: one mistyped digit then
    /// files nothing under another real person.
    public func normalize(_ raw: String) throws(StationError) -> String {
        let id = raw.filter { !$0.isWhitespace }.uppercased()
        guard !id.isEmpty else {
            throw StationError(.invalidCaseId, "the case id is empty", nextStep: "enter the patient's \(formats)")
        }
        if let (digits, check) = DNI.split(id) {
            guard DNI.checkCharacters(digits).contains(check) else {
                throw StationError(.invalidCaseId,
                                   "the check character \(check) does not match DNI \(digits): a digit or the check character was mistyped",
                                   nextStep: "read the 8 digits and the character after them again from the patient's DNI card")
            }
            return digits
        }
        let range = NSRange(id.startIndex..., in: id)
        guard id.count <= 32, regex.firstMatch(in: id, options: [.anchored], range: range)?.range == range else {
            throw StationError(.invalidCaseId, "\"\(raw)\" is not a case id this station accepts",
                               nextStep: "enter the patient's \(formats)")
        }
        return id
    }
}

/// The Peruvian DNI's check character (dígito de verificación), printed on
/// the card after the 8-digit number: the digits weighted 3, 2, 7, 6, 5, 4,
/// 3, 2, summed modulo 11, and the remainder mapped to a digit (older cards)
/// or a letter (newer ones). Either form of the character is accepted.
public enum DNI {
    static let weights = [3, 2, 7, 6, 5, 4, 3, 2]
    static let digits = Array("65432110987")
    static let letters = Array("KJIHGFEDCBA")

    /// The two characters that may follow `number` (8 digits) on a card.
    public static func checkCharacters(_ number: String) -> Set<Character> {
        let values = number.compactMap(\.wholeNumberValue)
        guard values.count == 8, number.count == 8 else { return [] }
        let r = zip(weights, values).reduce(0) { $0 + $1.0 * $1.1 } % 11
        return [digits[r], letters[r]]
    }

    /// `DDDDDDDD-C` or `DDDDDDDDC` with C a letter: a DNI with its check
    /// character. Nine digits without a dash stay a historia clínica number.
    static func split(_ id: String) -> (String, Character)? {
        let chars = Array(id)
        let body: ArraySlice<Character>
        if chars.count == 10, chars[8] == "-" { body = chars[0..<8] }
        else if chars.count == 9, chars[8].isLetter { body = chars[0..<8] }
        else { return nil }
        guard body.allSatisfy({ $0.isASCII && $0.isNumber }), let check = chars.last,
              check.isASCII, check.isNumber || ("A"..."K").contains(check) else { return nil }
        return (String(body), check)
    }
}

/// Body sites offered on the kiosk, in the order shown. Labels live in `KioskStrings`.
public enum BodySite: String, Sendable, Codable, CaseIterable {
    case face, scalp, neck, chest, abdomen, back
    case armLeft = "arm_left", armRight = "arm_right"
    case handLeft = "hand_left", handRight = "hand_right"
    case legLeft = "leg_left", legRight = "leg_right"
    case footLeft = "foot_left", footRight = "foot_right"
    case genital, mouth, eye, other
}

/// Turns a control API request body into a `CaptureRequest`, or a
/// `StationError` that names the field and says what to send instead.
public struct CaptureRequestValidator: Sendable {
    public static let maxBodyBytes = 16 * 1024
    public static let maxNoteCharacters = 1000

    public var caseIds: CaseIdPolicy

    public init(caseIds: CaseIdPolicy = .peru) {
        self.caseIds = caseIds
    }

    public func validate(json body: Data) throws(StationError) -> CaptureRequest {
        guard body.count <= Self.maxBodyBytes else {
            throw StationError(.payloadTooLarge, "the request body has \(body.count) bytes, more than \(Self.maxBodyBytes)",
                               nextStep: "send only case_id, site, note and priority")
        }
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw StationError(.badRequest, "the request body must be a JSON object",
                                   nextStep: #"send {"case_id": "...", "site": "...", "note": "...", "priority": "routine"}"#)
            }
            object = o
        } catch let e as StationError {
            throw e
        } catch {
            throw StationError(.badRequest, "the request body is not valid JSON", nextStep: "send a JSON object with Content-Type: application/json")
        }
        let known: Set<String> = ["case_id", "site", "note", "priority"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw StationError(.badRequest, "unknown field \"\(unknown)\"", nextStep: "allowed fields: case_id, site, note, priority")
        }
        guard let rawCase = object["case_id"] else {
            throw StationError(.invalidCaseId, "case_id is missing", nextStep: "enter the patient's \(caseIds.formats)")
        }
        guard let caseText = rawCase as? String else {
            throw StationError(.invalidCaseId, "case_id must be a string", nextStep: #"quote it, e.g. "case_id": "01234567""#)
        }
        let caseId = try caseIds.normalize(caseText)

        guard let siteText = object["site"] as? String else {
            throw StationError(.badRequest, object["site"] == nil ? "site is missing" : "site must be a string",
                               nextStep: "one of: \(BodySite.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let site = BodySite(rawValue: siteText) else {
            throw StationError(.badRequest, "unknown body site \"\(siteText)\"",
                               nextStep: "one of: \(BodySite.allCases.map(\.rawValue).joined(separator: ", "))")
        }

        var note = ""
        if let raw = object["note"], !(raw is NSNull) {
            guard let n = raw as? String else { throw StationError(.badRequest, "note must be a string") }
            note = n.trimmingCharacters(in: .whitespacesAndNewlines)
            guard note.count <= Self.maxNoteCharacters else {
                throw StationError(.badRequest, "the note has \(note.count) characters, more than \(Self.maxNoteCharacters)",
                                   nextStep: "shorten it; details belong in the referral")
            }
            guard !note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }) else {
                throw StationError(.badRequest, "the note contains control characters", nextStep: "send plain text")
            }
        }

        var priority = CasePriority.routine
        if let raw = object["priority"], !(raw is NSNull) {
            guard let p = (raw as? String).flatMap(CasePriority.init(rawValue:)) else {
                throw StationError(.badRequest, "priority must be \"routine\" or \"urgent\"")
            }
            priority = p
        }
        return CaptureRequest(caseId: caseId, site: site.rawValue, note: note, priority: priority)
    }

    /// Parses `{"action": "pause"|"resume"|"limit", "rate": "64kbit" | bytesPerSecond}`.
    public static func uploadControl(json body: Data) throws(StationError) -> UploadControl {
        enum Rate: Decodable {
            case bytes(Int64), text(String)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                // JSONDecoder refuses `true` for an integer, which JSONSerialization's NSNumber would not.
                if let n = try? c.decode(Int64.self) { self = .bytes(n) } else { self = .text(try c.decode(String.self)) }
            }
        }
        struct Body: Decodable { var action: String; var rate: Rate? }
        let usage = #"send {"action": "pause"}, {"action": "resume"} or {"action": "limit", "rate": "64kbit"}"#
        guard body.count <= maxBodyBytes else {
            throw StationError(.payloadTooLarge, "the request body is larger than \(maxBodyBytes) bytes", nextStep: usage)
        }
        let request: Body
        do {
            request = try JSONDecoder().decode(Body.self, from: body)
        } catch {
            throw StationError(.badRequest, "the request body must be a JSON object with an action and, for limit, a rate", nextStep: usage)
        }
        switch request.action {
        case "pause": return .pause
        case "resume": return .resume
        case "limit":
            switch request.rate {
            case .bytes(let n) where n >= 0: return .limit(bytesPerSecond: n)
            case .text(let s): if let r = Units.parseRate(s) { return .limit(bytesPerSecond: r) }
            default: break
            }
            throw StationError(.badRequest, "rate is missing or not a rate",
                               nextStep: #"give bytes per second or a rate such as "64kbit", "16KiB/s" or "unlimited""#)
        default:
            throw StationError(.badRequest, "action must be \"pause\", \"resume\" or \"limit\"", nextStep: usage)
        }
    }
}
