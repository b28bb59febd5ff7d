import Basics
import Foundation
import Synchronization
@testable import Station

/// Launches a daemon executable as systemd would for `Type=notify`: with
/// `$NOTIFY_SOCKET` pointing at a `NotifyListener` and `$WATCHDOG_USEC` set,
/// and records what it says on the socket, stdout and stderr.
///
/// The same harness drives the demo daemon and `telestation run`: only the
/// executable, arguments and environment differ.
final class DaemonHarness: Sendable {
    let listener: NotifyListener
    let process: Process
    private let output = Locked(Data())
    private let errors = Locked(Data())

    static var buildDirectory: URL {
        // Tests run from the package's build directory, beside the executables.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug").standardized
    }

    init(executable: URL, arguments: [String], environment: [String: String] = [:],
         watchdog: Duration?, abstractSocket: Bool = false) throws {
        listener = try NotifyListener(abstract: abstractSocket)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = listener.address
        env.removeValue(forKey: "WATCHDOG_PID")
        if let watchdog {
            let usec = watchdog.components.seconds * 1_000_000 + watchdog.components.attoseconds / 1_000_000_000_000
            env["WATCHDOG_USEC"] = String(usec)
        } else {
            env.removeValue(forKey: "WATCHDOG_USEC")
        }
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        process = p
        out.fileHandleForReading.readabilityHandler = { [output] h in
            let d = h.availableData
            output.withLock { $0.append(d) }
        }
        err.fileHandleForReading.readabilityHandler = { [errors] h in
            let d = h.availableData
            errors.withLock { $0.append(d) }
        }
        try p.run()
    }

    var stdout: String { String(decoding: output.withLock { $0 }, as: UTF8.self) }
    var stderr: String { String(decoding: errors.withLock { $0 }, as: UTF8.self) }

    /// Polls until `condition` holds on stdout+stderr, or the timeout passes.
    func waitForOutput(timeout: Duration = .seconds(60), _ condition: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(stdout + stderr) { return true }
            if !process.isRunning { return condition(stdout + stderr) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(stdout + stderr)
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit; returns its status, or nil on timeout (after killing it).
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        listener.close()
    }
}

/// Writes a random 32-byte spool key, mode 0600 as the package creates it,
/// into `directory` (created when missing) and returns its path.
func makeSpoolKey(in directory: String) throws -> String {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/spool.key"
    guard FileManager.default.createFile(atPath: path, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }),
                                         attributes: [.posixPermissions: 0o600]) else {
        throw CocoaError(.fileWriteUnknown)
    }
    return path
}
