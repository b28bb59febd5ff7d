import Foundation

/// Runs blocking work (ioctl, file I/O, fsync) on a thread of its own and
/// awaits its result, so it never occupies Swift's cooperative pool.
public func runOnOwnThread<T: Sendable, E: Error>(_ name: String,
                                                  _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, E>, Never>) in
        let thread = Thread {
            c.resume(returning: Result { () throws(E) -> T in try body() })
        }
        thread.name = name
        thread.start()
    }
    return try result.get()
}

extension DeviceDiscovery {
    /// `captureDevices()` for async callers.
    public func captureDevices() async -> [DeviceInfo] {
        await runOnOwnThread("telestation-discovery") { () -> [DeviceInfo] in captureDevices() }
    }
}
