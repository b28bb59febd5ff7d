import Testing
@testable import Config
@testable import ConfigFile

// The campaign that found these inputs is FuzzTests.ConfigFuzz (`make fuzz`).

/// Inputs the fuzzer found; each once aborted the process inside toml++.
@Suite struct ConfigFuzzRegressions {
    @Test(arguments: ["[\u{FFFD}tation]\nid = \"a\"\n", "[é]\n", "[cámara]\ndevice = \"auto\"\n", "[station]\nid = \"a\"\n[station.ñ]\n"])
    func nonASCIISectionNamesAreErrorsNotCrashes(_ text: String) throws {
        do {
            _ = try StationConfig.parse(text, file: "s.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message.contains("outside quotes"))
            #expect(error.line != nil)
        }
        #expect(throws: ConfigError.self) { try CameraProfile.parse(text, file: "p.toml") }
    }

    @Test func nonASCIIInsideStringsAndCommentsIsFine() throws {
        let c = try StationConfig.parse("# Posta de salud de Ñaña — cámara\n[station]\nid = \"ps-01\" # sí\n[camera]\ndevice = \"synthetic\"\n[kiosk]\nlisten = '127.0.0.1:8080'\n")
        #expect(c.station.id == "ps-01")
        #expect(TOMLPrecheck.firstNonASCIIOutsideStrings("a = \"\"\"\né\n\"\"\"\nb = '''ñ'''\n") == nil)
        #expect(TOMLPrecheck.firstNonASCIIOutsideStrings("a = \"\\\"é\"\nñ = 1\n") == TOMLPrecheck.Problem(line: 2, character: "ñ"))
    }
}

@Suite struct ConfigFuzzHeaderRegressions {
    @Test(arguments: ["[,]\n", "[, a]\n", "[ ,\n", "[.]\n", "[=]\n", "[#]\n", "[[,]]\n", "[;]\n", "[!]\n", "  [ !x]\n"])
    func headersThatCannotStartAKeyAreErrorsNotCrashes(_ text: String) throws {
        do {
            _ = try StationConfig.parse(text, file: "s.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.line == 1)
            #expect(error.message.contains("cannot start a section name"))
        }
    }

    /// `[` (or `[[`) with nothing after it on its line, and the line where it
    /// stands. Found by the fuzz campaign at seed 12345, again once the
    /// example gained the spool keys (a comment line after the cut header),
    /// and by the config generator (the header's name on the next line).
    @Test(arguments: [
        ("[\n", 1), ("[ \n", 1), ("[\t\n", 1), ("[[\n", 1), ("[[ \n", 1), ("[\r\n", 1), ("[station]\nid = \"a\"\n[\n", 3),
        ("[\n# Station identifier\nid = \"a\"\n", 1), ("  [[ \n#x\n", 1),
        ("[station]\nid = \"x\"\n[\nuplink]\n", 3), ("[station]\nid = \"x\"\n[[ \r\n", 3),
    ])
    func aHeaderWithoutANameIsAnErrorNotACrash(_ text: String, line: Int) throws {
        do {
            _ = try StationConfig.parse(text, file: "s.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message == "a section header has no name", "\(error)")
            #expect(error.line == line)
            #expect(!error.description.contains { $0.isNewline })
        }
    }

    /// A `}` where an array expects a value; found by the fuzz campaign
    /// (seed 1795448568, minimised to `s=["",}` in a camera profile).
    @Test(arguments: ["s=[\"\",}\n", "s=[}\n", "s = [ 1 , }\n", "s=[\n}\n", "s=[[}\n", "s={a=[}\n", "[station]\nid = \"a\"\nx = [\n  1,\n}\n"])
    func aBraceInsideAnArrayIsAnErrorNotACrash(_ text: String) throws {
        let station: (String) throws(ConfigError) -> Void = { t throws(ConfigError) in _ = try StationConfig.parse(t, file: "s.toml") }
        let profile: (String) throws(ConfigError) -> Void = { t throws(ConfigError) in _ = try CameraProfile.parse(t, file: "p.toml") }
        for parse in [station, profile] {
            do {
                try parse(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.message.contains("inside an array"))
                #expect(error.line == text.filter { $0.isNewline }.count)
            }
        }
    }

    @Test func bracesAndBracketsThatNestProperlyStillParse() throws {
        let c = try StationConfig.parse("[station]\nid = \"a\" # [}\n[camera]\ndevice = \"synthetic\"\n")
        #expect(c.station.id == "a")
        #expect(TOMLPrecheck.firstNonASCIIOutsideStrings("x = [{a = [1, {b = 2}]}, \"}\", '}']\ny = { c = [ [1], [2] ] }\n[t]\n") == nil)
        #expect(TOMLPrecheck.firstNonASCIIOutsideStrings("x = [\n  [1, 2],\n  [3],\n]\n[[u]]\n") == nil)
    }
}
