import Foundation

/// A dedicated thread for the hub's file system calls (`write`, `fsync`,
/// `rename`), so they never block Swift's cooperative pool. Work runs in
/// submission order.
final class BlockingIO: @unchecked Sendable {
    // @unchecked Sendable: `jobs` and `stopping` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    func shutdown() {
        condition.withLock {
            stopping = true
            condition.signal()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws(HubError) -> T) async throws(HubError) -> T {
        let result: Result<T, HubError> = await withCheckedContinuation { cont in
            condition.withLock {
                jobs.append {
                    do throws(HubError) { cont.resume(returning: .success(try body())) } catch { cont.resume(returning: .failure(error)) }
                }
                condition.signal()
            }
        }
        return try result.get()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
