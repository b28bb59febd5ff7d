import Foundation

/// What a child process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs programs for the tests: the built executables, tar, curl, python
/// servers. One runner, so every module reads a child's output the same safe way.
public enum ProcessRunner {
    /// Runs `executable` to completion. Standard output and standard error are
    /// read at the same time (stderr on a thread of its own): reading one to
    /// its end before the other deadlocks once a chatty child fills the
    /// other's pipe (64 KiB on Linux).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           workingDirectory: String? = nil) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let workingDirectory { p.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errData = Captured()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = errData.wait()
        p.waitUntilExit()
        return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                             stderr: String(decoding: e, as: UTF8.self))
    }

    /// `/usr/bin/env ARGV...`: a program found on PATH.
    @discardableResult
    public static func env(_ argv: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try run("/usr/bin/env", argv, environment: environment)
    }
}

/// Data handed from the reader thread to the caller.
private final class Captured: @unchecked Sendable {
    // @unchecked Sendable: `data` is written once before `done` is signalled
    // and read only after waiting on it.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    func set(_ d: Data) { data = d; done.signal() }
    func wait() -> Data { done.wait(); return data }
}
