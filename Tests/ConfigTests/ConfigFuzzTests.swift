import Foundation
import Testing
@testable import Config

/// Structured random inputs for the configuration parser: mutations of the
/// real example file. Every input must either load or fail with a
/// ConfigError that names the file — never crash or hang.
/// `TELESTATION_FUZZ_ITERATIONS` sets the count (`make fuzz` runs a million),
/// `TELESTATION_FUZZ_SEED` the seed, and `TELESTATION_FUZZ_LAST` a file that
/// keeps the last input, to reproduce a crash.
@Suite struct ConfigFuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["TELESTATION_FUZZ_ITERATIONS"] ?? "") ?? 3000
    static let seed = UInt64(ProcessInfo.processInfo.environment["TELESTATION_FUZZ_SEED"] ?? "") ?? 0x7e1e57a7
    static let lastInputPath = ProcessInfo.processInfo.environment["TELESTATION_FUZZ_LAST"]

    static let fragments = [
        "[", "]", "[[", "]]", "=", "\"", "'", "\"\"\"", "#", "\n", ".", ",", "{", "}", "0x", "1e999", "-", "inf", "nan",
        "true", "1979-05-27T07:32:00Z", "\\u0000", "\\", "[camera.controls]", "[station]", "id = \"x\"", "width = -1",
        "max_rate = \"99999999999999999999GiB/s\"", "keep_uploaded = \"1h1h1h1h\"", "url = \"https://[::1]:0/\"", "\u{0}", "é", "🙂",
    ]

    @Test func mutatedExamplesNeverCrash() {
        var rng = SplitMix(seed: Self.seed)
        let base = Array(ConfigSchema.exampleText().utf8)
        var loaded = 0, rejected = 0
        for _ in 0..<Self.iterations {
            var bytes = base
            for _ in 0...Int(rng.next() % 6) {
                let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 5 {
                case 0: if !bytes.isEmpty { bytes[at] = UInt8(truncatingIfNeeded: rng.next()) }
                case 1: bytes.insert(contentsOf: Self.fragments[Int(rng.next() % UInt64(Self.fragments.count))].utf8, at: at)
                case 2: if !bytes.isEmpty { bytes.removeSubrange(at..<min(bytes.count, at + Int(rng.next() % 40))) }
                case 3: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + Int(rng.next() % 80))], at: Int(rng.next() % UInt64(bytes.count + 1)))
                default: bytes = Array(bytes.prefix(at))
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            // A crash kills the process: keep the input that caused it.
            if let last = Self.lastInputPath { try? text.write(toFile: last, atomically: false, encoding: .utf8) }
            do {
                _ = try StationConfig.parse(text, file: "fuzz.toml")
                loaded += 1
            } catch {
                #expect(error.file == "fuzz.toml")
                #expect(!error.message.isEmpty)
                #expect(!error.description.contains("\n"))
                rejected += 1
            }
        }
        // Both outcomes must occur, or the mutations are not exercising the parser.
        #expect(loaded > 0 && rejected > 0)
    }
}

/// A small deterministic generator, so a failure reproduces.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

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

    /// Found by the generator: `[` then a line break aborted inside toml++.
    @Test(arguments: ["[station]\nid = \"x\"\n[\nuplink]\n", "[station]\nid = \"x\"\n[", "[station]\nid = \"x\"\n[[ \r\n"])
    func aHeaderBrokenAfterItsBracketIsAnErrorNotACrash(_ text: String) throws {
        do {
            _ = try StationConfig.parse(text, file: "s.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.line == 3)
            #expect(error.message.contains("ends after its '['"), "\(error)")
        }
    }
}
