import Foundation
import Testing
import TestSupport

/// Runs the built `telestation` executable the way a technician would.
struct CLI {
    static let binDir: URL = {
        // Tests run from the package's build directory, beside the executables.
        let bundle = Bundle.main.bundleURL
        for dir in [bundle, bundle.deletingLastPathComponent()] {
            if FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("telestation").path) { return dir }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug").standardized
    }()

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// `asNobody` drops to uid/gid 65534 with setpriv, so permission checks
    /// are real even when the suite runs as root.
    static func run(_ args: [String], env: [String: String] = [:], asNobody: Bool = false) throws -> Result {
        let p = Process()
        let binary = binDir.appendingPathComponent("telestation").path
        var copyToRemove: String?
        defer { if let copyToRemove { try? FileManager.default.removeItem(atPath: copyToRemove) } }
        if asNobody {
            // A copy in a world-readable place: the checkout may sit under a private home.
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent("telestation-\(UUID().uuidString)").path
            try FileManager.default.copyItem(atPath: binary, toPath: copy)
            copyToRemove = copy
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", copy] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "TELESTATION_CONFIG")
        for (k, v) in env { environment[k] = v }
        let r = try ProcessRunner.run(p.executableURL!.path, p.arguments ?? [], environment: environment)
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }
}

final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("telestation-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let path = url.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite struct CLIConfigErrorTests {
    /// Each bad configuration ends with exit 78 and exactly one line that
    /// names the file, the place and the fix — never a stack trace.
    func expectConfigFailure(_ r: CLI.Result, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 78, "exit status", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        for p in parts { #expect(r.stderr.contains(p), "\(p) in \(r.stderr)", sourceLocation: sourceLocation) }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"), sourceLocation: sourceLocation)
    }

    @Test func missingFile() throws {
        let r = try CLI.run(["config", "--config", "/nonexistent/station.toml"])
        expectConfigFailure(r, contains: ["/nonexistent/station.toml", "not found", "--config"])
    }

    @Test func syntaxError() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"a\"\n[hub\nurl = 1\n")
        expectConfigFailure(try CLI.run(["config", "--config", f]), contains: [f + ":3", "TOML syntax error"])
    }

    @Test func unknownKey() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"a\"\nstate_dri = \"/x\"\n")
        expectConfigFailure(try CLI.run(["config", "--config", f]), contains: [f + ":3", "station.state_dri", "unknown key", "did you mean state_dir?"])
    }

    @Test func wrongType() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"a\"\n[camera]\nwarmup_frames = \"ten\"\n")
        expectConfigFailure(try CLI.run(["config", "--config", f]), contains: [f + ":4", "camera.warmup_frames", "expected a whole number"])
    }

    @Test func badURL() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"a\"\n[hub]\nurl = \"htp://x\"\n")
        expectConfigFailure(try CLI.run(["config", "--config", f]), contains: ["hub.url: \"htp://x\" is not an http(s) URL"])
    }

    @Test func unreadableTokenFile() throws {
        let d = try TempDir()
        let token = try d.write("token", "abc", mode: 0o000)
        let f = try d.write("s.toml", "[station]\nid = \"a\"\n[hub]\nurl = \"https://h/files/\"\ntoken_file = \"\(token)\"\n")
        // root reads any file, so the check runs as an unprivileged user.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: d.url.path)
        let r = try CLI.run(["config", "--config", f], asNobody: getuid() == 0)
        expectConfigFailure(r, contains: [f + ":5", "hub.token_file", token, "not readable"])
        try FileManager.default.removeItem(atPath: token)
        expectConfigFailure(try CLI.run(["config", "--config", f]), contains: ["hub.token_file", token, "does not exist"])
    }

    @Test func environmentOverridesTheDefaultPath() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"ps-env\"\n")
        let r = try CLI.run(["config"], env: ["TELESTATION_CONFIG": f])
        #expect(r.status == 0)
        #expect(r.stdout.contains("station ps-env"))
        let missing = try CLI.run(["config"], env: ["TELESTATION_CONFIG": d.url.path + "/none.toml"])
        #expect(missing.status == 78)
        #expect(missing.stderr.contains(d.url.path + "/none.toml"))
    }
}

@Suite struct CLIHelpTests {
    @Test func helpListsEverySubcommandWithOneLine() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        for sub in ["run", "capture", "enqueue", "sync", "status", "release", "dicom", "devices", "diagnose", "config"] {
            let line = r.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(sub + " ") }
            #expect(line != nil, "\(sub) listed in --help")
        }
    }
}

@Suite struct KioskListenTests {
    /// A control API on a network address without a token is a
    /// configuration error, before anything is opened.
    @Test func aNetworkAddressWithoutATokenIsRefused() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"ps-1\"\nstate_dir = \"\(d.url.path)/state\"\n[kiosk]\nlisten = \"0.0.0.0:8080\"\n")
        let r = try CLI.run(["run", "--config", f])
        #expect(r.status == 78, "exit status: \(r.stderr)")
        #expect(r.stderr.contains("kiosk.listen") && r.stderr.contains("kiosk.token_file"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.url.path + "/state/queue.sqlite"), "nothing was opened")
    }
}

/// Global options go before the subcommand too, as with git and systemctl.
@Suite struct CLIGlobalOptionTests {
    @Test func configBeforeTheSubcommand() throws {
        let d = try TempDir()
        let f = try d.write("s.toml", "[station]\nid = \"a\"\nstate_dir = \"\(d.url.path)/state\"\n[spool]\ninsecure_allow_plaintext = true\n")
        for args in [["--config", f, "status"], ["--config=\(f)", "-q", "status"], ["status", "--config", f]] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stdout.contains("nothing pending"), "\(args): \(r.stdout)")
        }
        // The option really reaches the subcommand: a missing file is named.
        let missing = try CLI.run(["--config", "/nonexistent/s.toml", "status"])
        #expect(missing.status == 78)
        #expect(missing.stderr.contains("/nonexistent/s.toml"))
        // Arguments that are not global options are left to the parser.
        #expect(try CLI.run(["--config", f, "no-such-command"]).status == 64)
    }
}
