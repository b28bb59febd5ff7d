import Basics
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
                throw StationError(.dniCheckMismatch,
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

    static let fields = ["case_id", "site", "note", "priority", "role", "aspect", "patient", "history", "consent"]
    static let maxTextCharacters = 120
    static let maxConsentCharacters = 2000

    public func validate(json body: Data) throws(StationError) -> CaptureRequest {
        try validate(object: Self.object(body), requireSite: true)
    }

    /// `POST /api/v1/cases`: `{"ids": ["r…", …], "case": {case_id, patient, history, consent, note, priority}}`.
    public func validateCase(json body: Data) throws(StationError) -> CaseSubmission {
        let object = try Self.object(body)
        let usage = #"send {"ids": ["r1a2b3c4", …], "case": {"case_id": "…", "patient": {…}, "history": {…}, "consent": "…"}}"#
        if let unknown = object.keys.sorted().first(where: { !["ids", "case"].contains($0) }) {
            throw StationError(.badRequest, "unknown field \"\(unknown)\"", nextStep: usage)
        }
        guard let ids = object["ids"] as? [String], !ids.isEmpty, ids.count <= 16 else {
            throw StationError(.badRequest, "ids must list the 1 to 16 captures under review that make the case", nextStep: usage)
        }
        guard Set(ids).count == ids.count else {
            throw StationError(.badRequest, "ids names the same capture twice", nextStep: "list each image of the case once")
        }
        guard let details = object["case"] as? [String: Any] else {
            throw StationError(.badRequest, "case is missing or not an object", nextStep: usage)
        }
        return CaseSubmission(ids: ids, details: try validate(object: details, requireSite: false))
    }

    static func object(_ body: Data) throws(StationError) -> [String: Any] {
        guard body.count <= Self.maxBodyBytes else {
            throw StationError(.payloadTooLarge, "the request body has \(body.count) bytes, more than \(Self.maxBodyBytes)",
                               nextStep: "send only \(fields.joined(separator: ", "))")
        }
        do {
            guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw StationError(.badRequest, "the request body must be a JSON object",
                                   nextStep: #"send {"case_id": "...", "site": "...", "note": "...", "priority": "routine"}"#)
            }
            return o
        } catch let e as StationError {
            throw e
        } catch {
            throw StationError(.badRequest, "the request body is not valid JSON", nextStep: "send a JSON object with Content-Type: application/json")
        }
    }

    func validate(object: [String: Any], requireSite: Bool) throws(StationError) -> CaptureRequest {
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw StationError(.badRequest, "unknown field \"\(unknown)\"", nextStep: "allowed fields: \(Self.fields.joined(separator: ", "))")
        }
        guard let rawCase = object["case_id"] else {
            throw StationError(.invalidCaseId, "case_id is missing", nextStep: "enter the patient's \(caseIds.formats)")
        }
        guard let caseText = rawCase as? String else {
            throw StationError(.invalidCaseId, "case_id must be a string", nextStep: #"quote it, e.g. "case_id": "01234567""#)
        }
        let caseId = try caseIds.normalize(caseText)

        var site = ""
        if requireSite || (object["site"] != nil && !(object["site"] is NSNull)) {
            guard let siteText = object["site"] as? String else {
                throw StationError(.badRequest, object["site"] == nil ? "site is missing" : "site must be a string",
                                   nextStep: "one of: \(BodySite.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let known = BodySite(rawValue: siteText) else {
                throw StationError(.badRequest, "unknown body site \"\(siteText)\"",
                                   nextStep: "one of: \(BodySite.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            site = known.rawValue
        }

        let note = try Self.text(object["note"], field: "note", limit: Self.maxNoteCharacters, allowLines: true) ?? ""

        var priority = CasePriority.routine
        if let raw = object["priority"], !(raw is NSNull) {
            guard let p = (raw as? String).flatMap(CasePriority.init(rawValue:)) else {
                throw StationError(.badRequest, "priority must be \"routine\" or \"urgent\"")
            }
            priority = p
        }
        let role = try Self.choice(object["role"], field: "role", ImageRole.self)
        let aspect = try Self.choice(object["aspect"], field: "aspect", BodyAspect.self)
        let patient = try Self.patient(object["patient"])
        let history = try Self.history(object["history"])
        var consent: String? = nil
        if let raw = object["consent"], !(raw is NSNull) {
            guard let text = try Self.text(raw, field: "consent", limit: Self.maxConsentCharacters, allowLines: true), !text.isEmpty else {
                throw StationError(.badRequest, "consent is empty", nextStep: "send the text the patient agreed to, or leave consent out until the box is ticked")
            }
            consent = text
        }
        return CaptureRequest(caseId: caseId, site: site, note: note, priority: priority, role: role, aspect: aspect,
                              patient: patient, history: history, consent: consent)
    }

    /// Free text: trimmed, within `limit` characters, no control characters
    /// (line breaks and tabs only where `allowLines`). nil when absent.
    static func text(_ raw: Any?, field: String, limit: Int, allowLines: Bool = false) throws(StationError) -> String? {
        guard let raw, !(raw is NSNull) else { return nil }
        guard let s = raw as? String else { throw StationError(.badRequest, "\(field) must be a string") }
        let text = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.count <= limit else {
            throw StationError(.badRequest, "the \(field) has \(text.count) characters, more than \(limit)",
                               nextStep: "shorten it; details belong in the referral")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !(allowLines && ($0 == "\n" || $0 == "\t")) }) else {
            throw StationError(.badRequest, "the \(field) contains control characters", nextStep: "send plain text")
        }
        return text
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ raw: Any?, field: String, _: T.Type) throws(StationError) -> T? where T.RawValue == String {
        guard let raw, !(raw is NSNull) else { return nil }
        guard let value = (raw as? String).flatMap(T.init(rawValue:)) else {
            throw StationError(.badRequest, "\(field) must be one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    /// JSONSerialization reads `true`/`false` as NSNumber too; a boolean's type encoding is `c` (a JSON number's is `q` or `d`).
    static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func flag(_ raw: Any?, field: String) throws(StationError) -> Bool? {
        guard let raw, !(raw is NSNull) else { return nil }
        // JSONSerialization gives NSNumber for both booleans and numbers; only a JSON boolean is a yes/no answer.
        guard let n = raw as? NSNumber, isBoolean(n) else {
            throw StationError(.badRequest, "history.\(field) must be true, false or null (not known)")
        }
        return n.boolValue
    }

    static func patient(_ raw: Any?) throws(StationError) -> PatientEntry? {
        guard let raw, !(raw is NSNull) else { return nil }
        let usage = #"send {"surnames": "MAMANI QUISPE", "given_names": "Rosa", "sex": "F", "age": 54}"#
        guard let o = raw as? [String: Any] else { throw StationError(.badRequest, "patient must be an object", nextStep: usage) }
        if let unknown = o.keys.sorted().first(where: { !["surnames", "given_names", "sex", "age"].contains($0) }) {
            throw StationError(.badRequest, "unknown patient field \"\(unknown)\"", nextStep: usage)
        }
        func name(_ key: String, _ label: String) throws(StationError) -> String {
            guard let n = try text(o[key], field: "patient.\(key)", limit: 64), !n.isEmpty else {
                throw StationError(.badRequest, "the patient's \(label) are missing", nextStep: "write them as on the DNI")
            }
            guard !n.contains("^"), !n.contains("\\"), !n.contains("=") else {
                throw StationError(.badRequest, "the patient's \(label) contain ^, \\ or =", nextStep: "write letters, spaces, apostrophes and hyphens only")
            }
            return n
        }
        let surnames = try name("surnames", "surnames").uppercased()
        let given = try name("given_names", "given names")
        guard let sex = o["sex"] as? String, ["F", "M", "O"].contains(sex) else {
            throw StationError(.badRequest, "patient.sex must be \"F\", \"M\" or \"O\"", nextStep: usage)
        }
        guard let n = o["age"] as? NSNumber, !isBoolean(n), n.doubleValue == n.doubleValue.rounded(),
              (0...130).contains(n.intValue) else {
            throw StationError(.badRequest, "patient.age must be whole years from 0 to 130", nextStep: "ask the patient or read the birth date on the DNI")
        }
        return PatientEntry(surnames: surnames, givenNames: given, sex: sex, age: n.intValue)
    }

    static func history(_ raw: Any?) throws(StationError) -> CaseHistory? {
        guard let raw, !(raw is NSNull) else { return nil }
        let keys = ["duration", "itching", "bleeding", "changed", "treatment"]
        guard let o = raw as? [String: Any] else {
            throw StationError(.badRequest, "history must be an object", nextStep: "fields: \(keys.joined(separator: ", "))")
        }
        if let unknown = o.keys.sorted().first(where: { !keys.contains($0) }) {
            throw StationError(.badRequest, "unknown history field \"\(unknown)\"", nextStep: "fields: \(keys.joined(separator: ", "))")
        }
        let h = CaseHistory(duration: try text(o["duration"], field: "history.duration", limit: maxTextCharacters).flatMap { $0.isEmpty ? nil : $0 },
                            itching: try flag(o["itching"], field: "itching"), bleeding: try flag(o["bleeding"], field: "bleeding"),
                            changed: try flag(o["changed"], field: "changed"),
                            treatment: try text(o["treatment"], field: "history.treatment", limit: 500, allowLines: true).flatMap { $0.isEmpty ? nil : $0 })
        return h.isEmpty ? nil : h
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
