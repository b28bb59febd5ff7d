import Foundation
import Testing
@testable import Config
@testable import ConfigFile

@Suite struct UnitsTests {
    @Test func sizes() {
        #expect(Units.parseSize("512") == 512)
        #expect(Units.parseSize("64KiB") == 65536)
        #expect(Units.parseSize("4MiB") == 4 << 20)
        #expect(Units.parseSize("200 MiB") == 200 << 20)
        #expect(Units.parseSize("1.5GB") == 1_500_000_000)
        #expect(Units.parseSize("4 parsecs") == nil)
        #expect(Units.parseSize("MiB") == nil)
        #expect(Units.parseSize("") == nil)
    }

    @Test func durations() {
        #expect(Units.parseDuration("30s") == 30)
        #expect(Units.parseDuration("5m") == 300)
        #expect(Units.parseDuration("1h30m") == 5400)
        #expect(Units.parseDuration("7d") == 604_800)
        #expect(Units.parseDuration("250ms") == 0.25)
        #expect(Units.parseDuration("5") == nil)
        #expect(Units.parseDuration("5 fortnights") == nil)
    }

    @Test func rates() {
        #expect(Units.parseRate("64kbit") == 8000)
        #expect(Units.parseRate("2Mbit") == 250_000)
        #expect(Units.parseRate("16KiB/s") == 16384)
        #expect(Units.parseRate("1MB/s") == 1_000_000)
        #expect(Units.parseRate("128kbps") == 16000)
        #expect(Units.parseRate("unlimited") == 0)
        #expect(Units.parseRate("fast") == nil)
    }
}

@Suite struct ConfigLoadTests {
    let minimal = """
    [station]
    id = "ps-test-01"
    """

    @Test func defaultsApplyToAMinimalFile() throws {
        let c = try StationConfig.parse(minimal)
        #expect(c.station.id == "ps-test-01")
        #expect(c.station.stateDir == "/var/lib/telestation")
        #expect(c.kiosk.listen == "127.0.0.1:8080")
        #expect(c.kiosk.language == .es)
        #expect(c.spool.keepUploaded == 7 * 86400)
        #expect(c.spool.minFree == 200 << 20)
        #expect(c.hub.url == nil)
        #expect(c.camera.device == "auto")
    }

    @Test func everyKeyOfTheExampleParses() throws {
        // The example shows optional keys commented out; uncommenting the
        // ones that need no file on disk must still give a valid config.
        var text = ConfigSchema.exampleText()
        for key in ["state_dir", "width", "height"] {
            text = text.replacingOccurrences(of: "# \(key) = ", with: "\(key) = ")
        }
        let c = try StationConfig.parse(text)
        #expect(c.hub.url == "https://hub.example.org/files/")
        #expect(c.camera.width == 1920 && c.camera.height == 1080)
        #expect(c.uplink.maxChunk == 8 << 20)
        #expect(c.uplink.backoffMax == 600)
    }

    @Test func cameraControlsTable() throws {
        let c = try StationConfig.parse(minimal + "\n[camera]\ndevice = \"/dev/video0\"\n[camera.controls]\npower_line_frequency = 1\nfocus_automatic_continuous = false\n")
        #expect(c.camera.controls == ["power_line_frequency": 1, "focus_automatic_continuous": 0])
        #expect(c.camera.device == "/dev/video0")
    }

    @Test func exampleFileIsTheSchemaRendering() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../hardware/station.example.toml").standardized
        let onDisk = try String(contentsOf: url, encoding: .utf8)
        #expect(onDisk == ConfigSchema.exampleText(),
                "hardware/station.example.toml is stale: run `make example-config`")
        for key in ConfigSchema.keys {
            let line = key.path == "camera.controls" ? "[camera.controls]" : "\(key.name) = \(key.example)"
            #expect(onDisk.contains(line), "\(key.path) missing from the example")
        }
    }

    func failure(_ text: String) -> ConfigError? {
        do { _ = try StationConfig.parse(text, file: "station.toml"); return nil } catch { return error }
    }

    @Test func healthInterval() throws {
        #expect(try StationConfig.parse(minimal).health.interval == 900)
        #expect(try StationConfig.parse(minimal + "\n[health]\ninterval = \"2s\"\n").health.interval == 2)
        #expect(try StationConfig.parse(minimal + "\n[health]\ninterval = \"0\"\n").health.interval == 0)
        #expect(try StationConfig.parse(minimal + "\n[health]\ninterval = 0\n").health.interval == 0)
        let e = try #require(failure(minimal + "\n[health]\ninterval = \"500ms\"\n"))
        #expect(e.key == "health.interval")
        #expect(e.nextStep?.contains("15m") == true)
        #expect(failure(minimal + "\n[health]\ninterval = \"often\"\n")?.key == "health.interval")
    }

    @Test func badURLNamesKeyValueLineAndFix() throws {
        let e = try #require(failure(minimal + "\n[hub]\nurl = \"htp://x\"\n"))
        #expect(e.key == "hub.url")
        #expect(e.line == 4)
        #expect(e.description.contains("station.toml:4: hub.url: \"htp://x\" is not an http(s) URL"))
        #expect(e.nextStep != nil)
    }

    @Test func unknownKeyIsAnErrorWithSuggestion() throws {
        let e = try #require(failure(minimal + "\n[uplink]\nmax_rte = \"64kbit\"\n"))
        #expect(e.key == "uplink.max_rte")
        #expect(e.message == "unknown key")
        #expect(e.nextStep == "did you mean max_rate?")
        #expect(e.line == 4)
    }

    @Test func unknownSectionIsAnError() throws {
        let e = try #require(failure(minimal + "\n[camrea]\ndevice = \"auto\"\n"))
        #expect(e.message.contains("unknown section [camrea]"))
        #expect(e.nextStep == "did you mean camera?")
    }

    @Test func wrongTypeSaysWhatIsExpected() throws {
        let e = try #require(failure(minimal + "\n[camera]\nwidth = \"wide\"\n"))
        #expect(e.key == "camera.width")
        #expect(e.nextStep == "expected a whole number")
    }

    @Test func outOfRangeAndBadUnits() throws {
        let q = try #require(failure(minimal + "\n[camera]\njpeg_quality = 101\n"))
        #expect(q.description.contains("101 is out of range"))
        let d = try #require(failure(minimal + "\n[uplink]\nstall_timeout = \"soon\"\n"))
        #expect(d.description.contains("\"soon\" is not a duration"))
        let r = try #require(failure(minimal + "\n[uplink]\nmax_rate = \"fast\"\n"))
        #expect(r.key == "uplink.max_rate")
        let s = try #require(failure(minimal + "\n[spool]\nmin_free = \"lots\"\n"))
        #expect(s.key == "spool.min_free")
    }

    @Test func missingRequiredKey() throws {
        let e = try #require(failure("[kiosk]\nlanguage = \"en\"\n"))
        #expect(e.key == "station.id")
        #expect(e.message == "required key is missing")
    }

    @Test func syntaxErrorNamesTheLine() throws {
        let e = try #require(failure("[station]\nid = ps-01\n"))
        #expect(e.line == 2)
        #expect(e.message.hasPrefix("TOML syntax error"))
    }

    @Test func crossKeyChecks() throws {
        let chunks = try #require(failure(minimal + "\n[uplink]\nmin_chunk = \"1MiB\"\nmax_chunk = \"64KiB\"\n"))
        #expect(chunks.key == "uplink.min_chunk")
        let size = try #require(failure(minimal + "\n[camera]\nwidth = 1920\n"))
        #expect(size.message.contains("together"))
    }

    @Test func badChoicesListTheOptions() throws {
        let e = try #require(failure(minimal + "\n[kiosk]\nlanguage = \"qu\"\n"))
        #expect(e.description.contains("\"es\", \"en\""))
        let l = try #require(failure(minimal + "\n[kiosk]\nlisten = \"8080\"\n"))
        #expect(l.key == "kiosk.listen")
    }

    @Test func unreadableAndMissingTokenFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try #require(failure(minimal + "\n[hub]\ntoken_file = \"\(dir.path)/none\"\n"))
        #expect(missing.key == "hub.token_file")
        #expect(missing.message.contains("does not exist"))
        let token = dir.appendingPathComponent("token")
        try "s3cret\n".write(to: token, atomically: true, encoding: .utf8)
        let c = try StationConfig.parse(minimal + "\n[hub]\ntoken_file = \"\(token.path)\"\n")
        #expect(try c.hubToken() == "s3cret")
        let relative = try #require(failure(minimal + "\n[hub]\ntoken_file = \"token\"\n"))
        #expect(relative.message.contains("absolute path"))
    }

    @Test func loadFromDiskErrors() throws {
        #expect(throws: ConfigError.self) { try StationConfig.load(path: "/nonexistent/station.toml") }
        do {
            _ = try StationConfig.load(path: "/nonexistent/station.toml")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/station.toml: configuration file not found"))
        }
    }
}
