import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A structured random fuzzer for the parsers and validators that read
/// untrusted bytes. Each target turns one input (bytes) into a verdict and
/// checks its properties; the driver mutates seed inputs, keeps inputs that
/// produced an outcome not seen before (a cheap stand-in for coverage
/// feedback), and counts executions.
///
/// Environment:
/// - `TELESTATION_FUZZ_ITERATIONS`: inputs per target (default: the short
///   count each target gives, for the normal test run; `make fuzz` sets a million);
/// - `TELESTATION_FUZZ_SEED`: the random seed (a failure names it; the same
///   seed and count give the same inputs);
/// - `TELESTATION_FUZZ_REPORT`: a file to which one Markdown table row of
///   figures per target is appended;
/// - `TELESTATION_FUZZ_CRASH_DIR`: where the input that crashed or hung the
///   process is written (default: the temporary directory); a crash in a
///   target's generator leaves the input before it;
/// - `TELESTATION_FUZZ_REPLAY`: a saved input to check alone instead; the
///   process prints the outcome and exits (1 on a property violation).
enum Fuzz {
    /// A property of the target did not hold for an input.
    struct Violation: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static let environment = ProcessInfo.processInfo.environment
    static let seed = UInt64(environment["TELESTATION_FUZZ_SEED"] ?? "") ?? 0x7e1e_57a7
    static let reportPath = environment["TELESTATION_FUZZ_REPORT"]
    static let crashDirectory = environment["TELESTATION_FUZZ_CRASH_DIR"] ?? NSTemporaryDirectory()
    /// A single input that takes this long is a hang, not slowness on a busy machine.
    static let hangSeconds = 60.0

    static func iterations(short: Int) -> Int {
        Int(environment["TELESTATION_FUZZ_ITERATIONS"] ?? "") ?? short
    }

    struct Figures {
        var target: String
        var executions = 0
        var seconds = 0.0
        var slowest = 0.0
        var violations = 0
        var outcomes: [String: Int] = [:]
    }

    /// Runs `check` on `iterations` inputs made by `mutate` from `seeds` (and
    /// from inputs kept along the way). `check` returns a short outcome
    /// label (e.g. the kind of error, without numbers) or throws `Violation`.
    @discardableResult
    static func run(_ target: String, short: Int, seeds: [[UInt8]],
                    mutate: (inout [UInt8], inout SplitMix, [[UInt8]]) -> Void,
                    check: ([UInt8]) throws -> String) -> Figures {
        if let path = environment["TELESTATION_FUZZ_REPLAY"] {
            // One saved input (e.g. from TELESTATION_FUZZ_CRASH_DIR), to reproduce a crash under a debugger.
            let input = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
            print("fuzz \(target): replaying \(path): \(describe(input))")
            do {
                print("fuzz \(target): outcome: \(try check(input))")
                exit(0)
            } catch {
                print("fuzz \(target): \(error)")
                exit(1)
            }
        }
        let count = iterations(short: short)
        var rng = SplitMix(seed: seed ^ UInt64(truncatingIfNeeded: target.utf8.reduce(5381) { ($0 &* 33) &+ Int($1) }))
        var pool = seeds
        var figures = Figures(target: target)
        let guardian = CrashGuard(target: target)
        defer { guardian.finish() }
        let start = Date()
        // Seeds first, unmutated, then mutations.
        for i in 0..<count {
            var input = pool[i < seeds.count ? i : Int(rng.next() % UInt64(pool.count))]
            if i >= seeds.count {
                for _ in 0...Int(rng.next() % 4) { mutate(&input, &rng, pool) }
            }
            guardian.arm(input)
            let t0 = DispatchTime.now().uptimeNanoseconds
            var outcome: String
            do {
                outcome = try check(input)
                if figures.outcomes[outcome] == nil, figures.outcomes.count >= 4096 { outcome = "other" }
            } catch {
                figures.violations += 1
                outcome = "violation"
                if figures.violations <= 5 {
                    Issue.record("fuzz \(target) (seed \(seed), input \(i)): \(error) — input: \(describe(input))")
                }
            }
            let took = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            figures.slowest = max(figures.slowest, took)
            if figures.outcomes[outcome, default: 0] == 0, pool.count < 512 { pool.append(input) }
            figures.outcomes[outcome, default: 0] += 1
            figures.executions += 1
        }
        figures.seconds = Date().timeIntervalSince(start)
        record(figures)
        return figures
    }

    /// Runs `check` on inputs that once broke a property or the process.
    static func replay(_ inputs: [[UInt8]], check: ([UInt8]) throws -> String) {
        for input in inputs {
            do { _ = try check(input) } catch { Issue.record("\(error) — input: \(describe(input))") }
        }
    }

    static func describe(_ input: [UInt8]) -> String {
        let text = String(decoding: input.prefix(300), as: UTF8.self)
        return "\(input.count) bytes: \(text.debugDescription)\(input.count > 300 ? "…" : "")"
    }

    /// Appends `| target | executions | seconds | executions/s | seed | crashes | violations | outcomes | slowest |`.
    static func record(_ f: Figures) {
        let rate = f.seconds > 0 ? Int(Double(f.executions) / f.seconds) : 0
        let line = String(format: "| %@ | %d | %.1f | %d | 0x%llx | 0 | %d | %d | %.1f ms |\n",
                          f.target, f.executions, f.seconds, rate, seed, f.violations, f.outcomes.count, f.slowest * 1000)
        print("fuzz \(f.target): \(f.executions) executions in \(String(format: "%.1f", f.seconds)) s, seed 0x\(String(seed, radix: 16)), \(f.violations) violations, \(f.outcomes.count) distinct outcomes, slowest input \(String(format: "%.1f", f.slowest * 1000)) ms")
        guard let reportPath else { return }
        guard let h = FileHandle(forWritingAtPath: reportPath) ?? {
            _ = FileManager.default.createFile(atPath: reportPath, contents: nil)
            return FileHandle(forWritingAtPath: reportPath)
        }() else { return }
        h.seekToEndOfFile()
        h.write(Data(line.utf8))
        try? h.close()
    }
}

// MARK: Crash and hang capture

/// State the signal handler reads; it may use only async-signal-safe calls,
/// so everything is prepared before the first input.
nonisolated(unsafe) private var crashFD: Int32 = -1
nonisolated(unsafe) private var crashBuffer: UnsafeMutablePointer<UInt8>? = nil
nonisolated(unsafe) private var crashLength = 0
nonisolated(unsafe) private var crashMessage: [CChar] = []
private let crashCapacity = 1 << 20
private let crashSignals = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE]

private func fuzzCrashHandler(_ sig: Int32) {
    if crashFD >= 0, let crashBuffer {
        _ = lseek(crashFD, 0, SEEK_SET)
        _ = write(crashFD, crashBuffer, crashLength)
        _ = ftruncate(crashFD, off_t(crashLength))
        _ = crashMessage.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
    }
    signal(sig, SIG_DFL)
    raise(sig)
}

/// Keeps a copy of the current input where a signal handler can write it
/// out, and a watchdog thread that does the same and aborts when one input
/// runs longer than `Fuzz.hangSeconds`.
final class CrashGuard: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var generation = 0
    private var armedAt = DispatchTime.now().uptimeNanoseconds
    private var finished = false

    init(target: String) {
        path = (Fuzz.crashDirectory as NSString).appendingPathComponent("fuzz-crash-\(target)-\(getpid()).bin")
        crashFD = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        crashBuffer = crashBuffer ?? UnsafeMutablePointer<UInt8>.allocate(capacity: crashCapacity)
        crashMessage = Array("\nfuzz \(target): the process crashed; the input is in \(path)\n".utf8CString.dropLast())
        for s in crashSignals { signal(s, fuzzCrashHandler) }
        let watchdog = Thread { [self] in
            var seen = -1
            while true {
                Thread.sleep(forTimeInterval: 1)
                let (g, at, done) = lock.withLock { (generation, armedAt, finished) }
                if done { return }
                if g == seen, Double(DispatchTime.now().uptimeNanoseconds - at) / 1e9 > Fuzz.hangSeconds {
                    let msg = "fuzz \(target): one input ran longer than \(Int(Fuzz.hangSeconds)) s (a hang)"
                    FileHandle.standardError.write(Data(msg.utf8))
                    abort()  // the handler writes the input out
                }
                seen = g
            }
        }
        watchdog.start()
    }

    func arm(_ input: [UInt8]) {
        let n = min(input.count, crashCapacity)
        input.withUnsafeBufferPointer { src in
            if n > 0 { crashBuffer!.update(from: src.baseAddress!, count: n) }
        }
        crashLength = n
        lock.withLock {
            generation += 1
            armedAt = DispatchTime.now().uptimeNanoseconds
        }
    }

    func finish() {
        lock.withLock { finished = true }
        for s in crashSignals { signal(s, SIG_DFL) }
        if crashFD >= 0 { close(crashFD); crashFD = -1 }
        unlink(path)
    }
}

// MARK: Randomness and byte mutations

/// A small deterministic generator, so a failure reproduces from its seed.
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

    /// A number in 0..<n (0 when n is 0).
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}

/// The generic mutations libFuzzer also uses: bit flips, interesting bytes,
/// insertions, deletions, copies within the input, splices from another
/// input, truncation and dictionary tokens.
enum ByteMutator {
    static let interesting: [UInt8] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x20, 0x2c, 0x22, 0x5c, 0x0a, 0x0d, 0x09]

    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix, pool: [[UInt8]], dictionary: [[UInt8]]) {
        let at = rng.below(bytes.count + 1)
        switch rng.below(9) {
        case 0: if at < bytes.count { bytes[at] ^= 1 << UInt8(rng.below(8)) }
        case 1: if at < bytes.count { bytes[at] = rng.chance(2) ? rng.pick(interesting) : UInt8(truncatingIfNeeded: rng.next()) }
        case 2: bytes.insert(contentsOf: (0..<1 + rng.below(8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 3: if at < bytes.count { bytes.removeSubrange(at..<min(bytes.count, at + 1 + rng.below(16))) }
        case 4:
            guard at < bytes.count else { return }
            let piece = bytes[at..<min(bytes.count, at + 1 + rng.below(64))]
            bytes.insert(contentsOf: piece, at: rng.below(bytes.count + 1))
        case 5:
            let other = rng.pick(pool)
            guard !other.isEmpty else { return }
            let from = rng.below(other.count)
            bytes.insert(contentsOf: other[from..<min(other.count, from + 1 + rng.below(128))], at: at)
        case 6: if rng.chance(3) { bytes = Array(bytes.prefix(at)) }
        default:
            guard !dictionary.isEmpty else { return }
            let token = rng.pick(dictionary)
            if rng.chance(2) || at + token.count > bytes.count {
                bytes.insert(contentsOf: token, at: at)
            } else {
                bytes.replaceSubrange(at..<at + token.count, with: token)
            }
        }
    }

    static func tokens(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }
}

/// An outcome label without the numbers in it, so that "segment at byte 12"
/// and "segment at byte 40" count as one kind of outcome.
func outcomeLabel(_ text: String, limit: Int = 48) -> String {
    String(text.prefix(limit).map { $0.isNumber ? "#" : $0 })
}
