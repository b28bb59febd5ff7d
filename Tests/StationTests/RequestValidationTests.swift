import Config
import ConfigFile
import Foundation
import Basics
import Testing
@testable import Station

@Suite struct CaseIdPolicyTests {
    @Test(arguments: [
        ("45871236", "45871236"),          // DNI
        ("hc 004512", "HC004512"),
        ("HC-004512", "HC-004512"),
        ("004512-2023", "004512-2023"),
        ("12", "12"),
        ("CE-001234567", "CE-001234567"),
        (" ce A1234567B ", "CEA1234567B"),
    ])
    func acceptsTheFormatsHealthPostsUse(raw: String, normalized: String) throws {
        #expect(try CaseIdPolicy.peru.normalize(raw) == normalized)
    }

    @Test(arguments: ["", "   ", "ABC", "4587123X", "HC-", "12345678901", "HC-12-", "DNI45871236", "1234;DROP", "CE12"])
    func rejectsEverythingElseWithTheAcceptedFormats(raw: String) {
        #expect {
            try CaseIdPolicy.peru.normalize(raw)
        } throws: { error in
            guard let e = error as? StationError else { return false }
            return e.code == .invalidCaseId && (e.nextStep ?? "").contains("DNI")
        }
    }

    /// The card's own example (python-stdnum's doctest: 10117410-2 is a
    /// valid CUI, -3 is not) and the letter form of the same character.
    @Test func aDNIWithItsCheckCharacterIsCheckedAndStoredAsItsDigits() throws {
        #expect(try CaseIdPolicy.peru.normalize("10117410-2") == "10117410")
        #expect(try CaseIdPolicy.peru.normalize("10117410 - g") == "10117410")
        #expect(try CaseIdPolicy.peru.normalize("10117410G") == "10117410")
        for typo in ["10117410-3", "10117411-2", "10117410H", "10117410-K"] {
            #expect {
                try CaseIdPolicy.peru.normalize(typo)
            } throws: { error in
                guard let e = error as? StationError else { return false }
                return e.code == .dniCheckMismatch && e.message.contains("check character") && (e.nextStep ?? "").contains("card")
            }
        }
        // Nine digits without a dash stay a historia clínica number.
        #expect(try CaseIdPolicy.peru.normalize("101174103") == "101174103")
    }

    /// Against an independent implementation (Debian's python3-stdnum,
    /// `stdnum.pe.cui.calc_check_digits`) over 500 random numbers.
    @Test func checkCharactersAgreeWithStdnum() throws {
        var numbers: [String] = []
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 { numbers.append(String(format: "%08d", Int.random(in: 0...99_999_999, using: &rng))) }
        let script = "import sys\nfrom stdnum.pe import cui\nfor n in sys.stdin.read().split(): print(n, cui.calc_check_digits(n))\n"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        try p.run()
        input.fileHandleForWriting.write(Data(numbers.joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "python3-stdnum is needed (`make deps-test`): \(err)")
        let lines = out.split(separator: "\n")
        try #require(lines.count == numbers.count)
        for line in lines {
            let parts = line.split(separator: " ")
            let number = String(parts[0]), theirs = Set(parts[1])
            #expect(DNI.checkCharacters(number) == theirs, "DNI \(number)")
            for c in "0123456789ABCDEFGHIJK" {
                let accepted = (try? CaseIdPolicy.peru.normalize("\(number)-\(c)")) != nil
                #expect(accepted == theirs.contains(c), "\(number)-\(c)")
            }
        }
    }

    @Test func aCustomPatternReplacesTheDefault() throws {
        let policy = try CaseIdPolicy(pattern: #"^TC-\d{6}$"#, formats: "TC-nnnnnn")
        #expect(try policy.normalize("tc-123456") == "TC-123456")
        #expect(throws: StationError.self) { try policy.normalize("45871236") }
    }

    @Test func thePatternComesFromTheConfiguration() throws {
        var config = StationConfig()
        #expect(try CaseIdPolicy(config: config).pattern == CaseIdPolicy.peruDefaultPattern)
        config.kiosk.caseIdPattern = #"^HC-\d{6}$"#
        let policy = try CaseIdPolicy(config: config)
        #expect(try policy.normalize("hc-004512") == "HC-004512")
        #expect(throws: StationError.self) { try policy.normalize("45871236") }
    }

    @Test func aBrokenPatternIsReportedAtStart() {
        #expect(throws: StationError.self) { try CaseIdPolicy(pattern: "([") }
    }
}

@Suite struct CaptureRequestValidatorTests {
    let v = CaptureRequestValidator()

    func error(_ json: String) -> StationError? {
        do {
            _ = try v.validate(json: Data(json.utf8))
            return nil
        } catch { return error }
    }

    @Test func aCompleteRequest() throws {
        let r = try v.validate(json: Data(#"{"case_id":"hc-004512","site":"arm_left","note":"  lesión 2 cm \n","priority":"urgent"}"#.utf8))
        #expect(r == CaptureRequest(caseId: "HC-004512", site: "arm_left", note: "lesión 2 cm", priority: .urgent))
    }

    @Test func noteAndPriorityAreOptional() throws {
        let r = try v.validate(json: Data(#"{"case_id":"45871236","site":"face","note":null}"#.utf8))
        #expect(r.priority == .routine)
        #expect(r.note == "")
    }

    @Test func eachMistakeIsNamed() {
        #expect(error("not json")?.message == "the request body is not valid JSON")
        #expect(error("[1]")?.message == "the request body must be a JSON object")
        #expect(error(#"{"site":"face"}"#)?.message == "case_id is missing")
        #expect(error(#"{"case_id":45871236,"site":"face"}"#)?.message == "case_id must be a string")
        #expect(error(#"{"case_id":"x","site":"face"}"#)?.code == .invalidCaseId)
        #expect(error(#"{"case_id":"45871236"}"#)?.message == "site is missing")
        #expect(error(#"{"case_id":"45871236","site":"elbow"}"#)?.message == #"unknown body site "elbow""#)
        #expect(error(#"{"case_id":"45871236","site":"face","priority":"asap"}"#)?.message == #"priority must be "routine" or "urgent""#)
        #expect(error(#"{"case_id":"45871236","site":"face","patient_name":"x"}"#)?.message == #"unknown field "patient_name""#)
        #expect(error(#"{"case_id":"45871236","site":"face","note":"a\u0007b"}"#)?.message == "the note contains control characters")
        let longNote = String(repeating: "a", count: CaptureRequestValidator.maxNoteCharacters + 1)
        #expect(error(#"{"case_id":"45871236","site":"face","note":"\#(longNote)"}"#)?.message.hasPrefix("the note has 1001 characters") == true)
        let huge = #"{"case_id":"45871236","site":"face","note":""# + String(repeating: "a", count: 20_000) + #""}"#
        #expect(error(huge)?.code == .payloadTooLarge)
    }

    @Test func uploadControls() throws {
        #expect(try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"pause"}"#.utf8)) == .pause)
        #expect(try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"resume"}"#.utf8)) == .resume)
        #expect(try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"limit","rate":"64kbit"}"#.utf8)) == .limit(bytesPerSecond: 8000))
        #expect(try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"limit","rate":4096}"#.utf8)) == .limit(bytesPerSecond: 4096))
        #expect(try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"limit","rate":"unlimited"}"#.utf8)) == .limit(bytesPerSecond: 0))
        #expect(throws: StationError.self) { try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"limit","rate":"fast"}"#.utf8)) }
        #expect(throws: StationError.self) { try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"limit","rate":true}"#.utf8)) }
        #expect(throws: StationError.self) { try CaptureRequestValidator.uploadControl(json: Data(#"{"action":"stop"}"#.utf8)) }
    }
}

@Suite struct KioskStringsTests {
    @Test func everyLanguageHasTheSameKeys() {
        #expect(Set(KioskStrings.es.keys) == Set(KioskStrings.en.keys))
    }

    @Test func everyValueTheCodeNamesHasAString() {
        for table in [KioskStrings.es, KioskStrings.en] {
            for site in BodySite.allCases { #expect(table["site_" + site.rawValue] != nil, "site_\(site.rawValue)") }
            for w in CaptureWarning.allCases { #expect(table["warn_" + w.rawValue] != nil, "warn_\(w.rawValue)") }
            for s in QueueState.allCases { #expect(table["state_" + s.rawValue] != nil, "state_\(s.rawValue)") }
            for r in ImageRole.allCases { #expect(table["role_" + r.rawValue] != nil, "role_\(r.rawValue)") }
            for a in BodyAspect.allCases { #expect(table[a.rawValue] != nil, "\(a.rawValue)") }
            for sex in ["F", "M", "O"] { #expect(table["confirm_" + sex]?.contains("{name}") == true, "confirm_\(sex)") }
            for q in ["itching", "bleeding", "changed"] { #expect(table[q] != nil, "\(q)") }
        }
    }

    @Test func thePageUsesOnlyKeysThatExist() throws {
        let page = KioskPage.render(language: .es, caseFormats: "")
        let pattern = try NSRegularExpression(pattern: #"(?:data-t="|\bt\(")([a-z_]*[a-z])""#)
        let keys = pattern.matches(in: page, range: NSRange(page.startIndex..., in: page)).map {
            String(page[Range($0.range(at: 1), in: page)!])
        }
        #expect(keys.count > 20)
        for key in keys { #expect(KioskStrings.es[key] != nil, "missing string \(key)") }
    }

    @Test func thePageIsRenderedInTheConfiguredLanguage() {
        let es = KioskPage.render(language: .es, caseFormats: "")
        #expect(es.contains(#"<html lang="es">"#))
        #expect(es.contains(#""capture":"CAPTURAR""#))
        let en = KioskPage.render(language: .en, caseFormats: "")
        #expect(en.contains(#""capture":"CAPTURE""#))
        #expect(!en.contains("{{"))
    }
}

/// The whole case as the kiosk sends it: patient, history, consent, image role and body map side.
@Suite struct CaseRequestTests {
    let v = CaptureRequestValidator()
    func error(_ json: String) -> StationError? { CaptureRequestValidatorTests().error(json) }

    @Test func aWholeCaseRequest() throws {
        let r = try v.validate(json: Data(#"""
            {"case_id":"40123456-J","site":"arm_left","aspect":"back","role":"close_up","note":"8 mm","priority":"urgent",
             "patient":{"surnames":" Mamani Quispe ","given_names":"Rosa","sex":"F","age":54},
             "history":{"duration":"3 meses","itching":true,"bleeding":false,"changed":null,"treatment":""},
             "consent":"El paciente acepta."}
            """#.utf8))
        #expect(r.caseId == "40123456")
        #expect(r.role == .closeUp && r.aspect == .back)
        #expect(r.patient == PatientEntry(surnames: "MAMANI QUISPE", givenNames: "Rosa", sex: "F", age: 54))
        #expect(r.patient?.dicomName == "MAMANI QUISPE^Rosa" && r.patient?.dicomAge == "054Y")
        // Unanswered questions stay unknown, empty text is no answer.
        #expect(r.history == CaseHistory(duration: "3 meses", itching: true, bleeding: false))
        #expect(r.consent == "El paciente acepta.")
    }

    @Test func eachMistakeInTheCaseIsNamed() {
        let base = #""case_id":"45871236","site":"face""#
        #expect(error("{\(base),\"role\":\"selfie\"}")?.message == "role must be one of: overview, close_up, dermoscopic")
        #expect(error("{\(base),\"aspect\":\"side\"}")?.message == "aspect must be one of: front, back")
        #expect(error("{\(base),\"patient\":{\"surnames\":\"\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":5}}")?.message == "the patient's surnames are missing")
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A^B\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":5}}")?.message.contains("contain ^") == true)
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A\",\"given_names\":\"Rosa\",\"sex\":\"X\",\"age\":5}}")?.message.hasPrefix("patient.sex must be") == true)
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":131}}")?.message == "patient.age must be whole years from 0 to 130")
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":true}}")?.message == "patient.age must be whole years from 0 to 130")
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":5.5}}")?.message == "patient.age must be whole years from 0 to 130")
        #expect(error("{\(base),\"patient\":{\"surnames\":\"A\",\"given_names\":\"Rosa\",\"sex\":\"F\",\"age\":5,\"dni\":1}}")?.message == #"unknown patient field "dni""#)
        #expect(error("{\(base),\"history\":{\"itching\":1}}")?.message == "history.itching must be true, false or null (not known)")
        #expect(error("{\(base),\"history\":{\"fever\":true}}")?.message == #"unknown history field "fever""#)
        #expect(error("{\(base),\"consent\":\"  \"}")?.message == "consent is empty")
        #expect(error(#"{"case_id":"40123456-7","site":"face"}"#)?.code == .dniCheckMismatch)
    }

    @Test func aCaseSubmission() throws {
        let s = try v.validateCase(json: Data(#"{"ids":["r1","r2","r3"],"case":{"case_id":"HC-004512","consent":"Sí."}}"#.utf8))
        #expect(s.ids == ["r1", "r2", "r3"])
        #expect(s.details.caseId == "HC-004512" && s.details.site == "" && s.details.consent == "Sí.")
        func fails(_ json: String) -> String? {
            do { _ = try v.validateCase(json: Data(json.utf8)); return nil } catch { return error.message }
        }
        #expect(fails(#"{"ids":[],"case":{"case_id":"HC-1"}}"#)?.hasPrefix("ids must list") == true)
        #expect(fails(#"{"ids":["r1","r1"],"case":{"case_id":"HC-1"}}"#) == "ids names the same capture twice")
        #expect(fails(#"{"ids":["r1"]}"#) == "case is missing or not an object")
        #expect(fails(#"{"ids":["r1"],"case":{"case_id":"HC-1"},"x":1}"#) == #"unknown field "x""#)
        #expect(fails(#"{"ids":["r1"],"case":{"case_id":"40123456-7"}}"#)?.contains("check character") == true)
    }
}
