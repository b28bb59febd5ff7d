import Basics
import Foundation

/// Runs checks concurrently on the shared blocking pool, each with its own
/// timeout, so one hung check (a DNS lookup on a dead link, a camera ioctl)
/// cannot stall the report: the report goes out without it, and its thread
/// stays with the pool until the call returns.
public struct DiagnosticRunner: Sendable {
    public var checks: [any DiagnosticCheck]

    public init(checks: [any DiagnosticCheck]) { self.checks = checks }

    /// The groups `--only` accepts.
    public var groups: [String] {
        var seen: [String] = []
        for c in checks where !seen.contains(c.group) { seen.append(c.group) }
        return seen
    }

    public func run(_ context: DiagnosticContext, only: Set<String> = []) async -> DiagnosticReport {
        let selected = checks.filter { only.isEmpty || only.contains($0.group) || only.contains($0.name) }
        let results = await withTaskGroup(of: (Int, [CheckResult]).self) { group in
            for (index, check) in selected.enumerated() {
                group.addTask { (index, await Self.runOne(check, context)) }
            }
            var all: [(Int, [CheckResult])] = []
            for await r in group { all.append(r) }
            return all.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
        return DiagnosticReport(station: context.config?.station.id, generatedAt: context.now(), results: results)
    }

    static func runOne(_ check: any DiagnosticCheck, _ context: DiagnosticContext) async -> [CheckResult] {
        let start = Date()
        // Unstructured tasks: a task group would wait for a hung check.
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<[CheckResult]?, Never>) in
            let once = Once(continuation)
            Task { once.resume(await Blocking.run { check.run(context) }) }
            Task {
                try? await Task.sleep(for: .seconds(check.timeout))
                once.resume(nil)
            }
        }
        let ms = Int(Date().timeIntervalSince(start) * 1000)
        guard var results = outcome else {
            return [CheckResult(check: check.name, status: .fail,
                                finding: "did not finish within \(Int(check.timeout)) s",
                                nextStep: "something it talks to is hanging (network, camera or disk); run `telestation diagnose --only \(check.group) --verbose` and look at the log",
                                details: [:])]
        }
        for i in results.indices { results[i].durationMs = ms }
        return results
    }
}

/// Resumes a continuation once: whichever of the check and its timeout comes first.
private final class Once: Sendable {
    private let continuation: Locked<CheckedContinuation<[CheckResult]?, Never>?>
    init(_ c: CheckedContinuation<[CheckResult]?, Never>) { continuation = Locked(c) }
    func resume(_ value: [CheckResult]?) {
        let c = continuation.withLock { c in
            defer { c = nil }
            return c
        }
        c?.resume(returning: value)
    }
}

/// Runs async work from a check's own thread and waits for its result.
/// Only for check bodies, which the runner runs on the blocking pool, never
/// on the cooperative pool (whose threads this would block).
func waitForAsync<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = ResultSlot<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        result.value = await body()
        done.signal()
    }
    done.wait()
    return result.value!
}

private final class ResultSlot<T>: @unchecked Sendable {
    // Written once by the task before the semaphore is signalled, read after.
    var value: T?
}
