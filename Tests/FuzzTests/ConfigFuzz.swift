import Foundation
import Testing
import Config
import ConfigFile

/// The configuration parser on mutations of the real example file and of a
/// camera profile. Every input must either load or fail with a ConfigError
/// that names the file in one line — never crash or hang. The inputs that
/// once aborted the process inside toml++ are regression tests in
/// ConfigTests (ConfigFuzzRegressions).
@Suite(.serialized) struct ConfigFuzz {
    static let dictionary = ByteMutator.tokens([
        "[", "]", "[[", "]]", "=", "\"", "'", "\"\"\"", "'''", "#", "\n", ".", ",", "{", "}", "0x", "1e999", "-", "inf", "nan",
        "true", "1979-05-27T07:32:00Z", "\\u0000", "\\", "[camera.controls]", "[station]", "id = \"x\"", "width = -1",
        "max_rate = \"99999999999999999999GiB/s\"", "keep_uploaded = \"1h1h1h1h\"", "url = \"https://[::1]:0/\"", "\u{0}", "é", "🙂",
        "[hub]\n", "[uplink]\n", "[kiosk]\n", "[spool]\n", "a.b.c = 1\n", "x = [1, [2, [3]]]\n", "t = { a = 1, b = { c = 2 } }\n",
    ])

    /// The camera profiles the package ships.
    static let profiles: [[UInt8]] = {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../hardware/profiles").standardized
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.filter { $0.hasSuffix(".toml") }.sorted() ?? []
        return names.compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path).map(Array.init) }
    }()

    /// One input: the first byte picks the parser (station config or camera profile).
    static func check(_ input: [UInt8]) throws -> String {
        let text = String(decoding: input.dropFirst(), as: UTF8.self)
        let asProfile = (input.first ?? 0) & 1 == 1
        do {
            if asProfile {
                _ = try CameraProfile.parse(text, file: "fuzz.toml")
            } else {
                _ = try StationConfig.parse(text, file: "fuzz.toml")
            }
            return asProfile ? "profile loaded" : "config loaded"
        } catch {
            guard error.file == "fuzz.toml" else { throw Fuzz.Violation("the error names \(error.file), not the file read") }
            guard !error.message.isEmpty else { throw Fuzz.Violation("an empty error message") }
            guard !error.description.contains("\n") else { throw Fuzz.Violation("a multi-line error: \(error.description.prefix(200))") }
            return outcomeLabel(error.message, limit: 32)
        }
    }

    /// The whole example, each of its sections alone (smaller inputs put
    /// more mutations where the parser decides), and the shipped profiles.
    static var seeds: [[UInt8]] {
        let example = ConfigSchema.exampleText()
        let sections = example.components(separatedBy: "\n[").dropFirst().map { "[" + $0 }
        return [[0] + Array(example.utf8)] + sections.map { [0] + Array($0.utf8) } + profiles.map { [1] + $0 }
    }

    @Test func config() {
        #expect(Self.profiles.count >= 2, "the shipped camera profiles are the profile seeds")
        var loaded = 0, rejected = 0
        let f = Fuzz.run("config", short: 10_000, seeds: Self.seeds,
                         mutate: { bytes, rng, pool in
                             ByteMutator.mutate(&bytes, &rng, pool: pool, dictionary: Self.dictionary)
                         },
                         check: Self.check)
        for (outcome, n) in f.outcomes { if outcome.hasSuffix("loaded") { loaded += n } else { rejected += n } }
        // Both outcomes must occur, or the mutations are not exercising the parser.
        #expect(loaded > 0 && rejected > 0)
        #expect(f.violations == 0)
    }
}
