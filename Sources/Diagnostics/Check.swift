import Config
import ConfigFile
import Foundation

/// The verdict of one check.
public enum CheckStatus: String, Codable, Sendable, Comparable {
    case pass = "PASS", skip = "SKIP", warn = "WARN", fail = "FAIL"

    var severity: Int {
        switch self { case .pass: 0; case .skip: 0; case .warn: 1; case .fail: 2 }
    }
    public static func < (a: CheckStatus, b: CheckStatus) -> Bool { a.severity < b.severity }
}

/// What one check found: a one-line finding and, unless it passed, the next step.
public struct CheckResult: Codable, Sendable, Equatable {
    public var check: String
    public var status: CheckStatus
    public var finding: String
    public var nextStep: String?
    /// Measured values (rates, ages, temperatures) for tools reading --json.
    public var details: [String: String]
    public var durationMs: Int

    public init(check: String, status: CheckStatus, finding: String, nextStep: String? = nil, details: [String: String] = [:]) {
        self.check = check
        self.status = status
        self.finding = finding
        self.nextStep = status == .pass ? nil : nextStep
        self.details = details
        self.durationMs = 0
    }

    enum CodingKeys: String, CodingKey {
        case check, status, finding, details
        case nextStep = "next_step"
        case durationMs = "duration_ms"
    }
}

/// Where checks look for the system: tests point these at fixture trees.
public struct SystemRoots: Sendable {
    public var sys: String
    public var proc: String
    public var dev: String
    /// `/run`, where `/run/systemd/system` tells whether systemd is PID 1.
    public var run: String

    public init(sys: String = "/sys", proc: String = "/proc", dev: String = "/dev", run: String = "/run") {
        self.sys = sys
        self.proc = proc
        self.dev = dev
        self.run = run
    }

    public func path(_ root: KeyPath<SystemRoots, String>, _ rest: String) -> String {
        (self[keyPath: root] as NSString).appendingPathComponent(rest)
    }
}

/// Everything a check may read. The configuration may have failed to load;
/// checks that need it then skip.
public struct DiagnosticContext: Sendable {
    public var configPath: String
    public var config: StationConfig?
    public var configError: ConfigError?
    public var roots: SystemRoots
    public var now: @Sendable () -> Date
    /// Where `--capture-test` saves the test capture, if asked.
    public var captureTestPath: String?
    public var environment: [String: String]

    public init(configPath: String, roots: SystemRoots = SystemRoots(), captureTestPath: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.configPath = configPath
        self.roots = roots
        self.captureTestPath = captureTestPath
        self.environment = environment
        self.now = now
        do {
            config = try StationConfig.load(path: configPath)
        } catch {
            configError = error
        }
    }
}

/// One independent check. `run` may block (DNS, sockets, ioctl): the runner
/// gives each check its own thread and stops waiting at `timeout`.
public protocol DiagnosticCheck: Sendable {
    /// Dotted name, its first part the group `--only` selects (`hub.auth`).
    var name: String { get }
    var timeout: Double { get }
    func run(_ context: DiagnosticContext) -> [CheckResult]
}

extension DiagnosticCheck {
    public var timeout: Double { 10 }
    public var group: String { String(name.split(separator: ".")[0]) }

    func result(_ status: CheckStatus, _ finding: String, next: String? = nil, details: [String: String] = [:]) -> CheckResult {
        CheckResult(check: name, status: status, finding: finding, nextStep: next, details: details)
    }

    func skip(_ why: String) -> [CheckResult] { [result(.skip, why)] }
}
