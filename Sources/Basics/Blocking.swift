import NIOPosix

/// The one place blocking work runs: file reads and writes, `fsync`, SQLite
/// commits, decryption and hashing of spooled files, `ioctl` probes. Swift's
/// cooperative pool has one thread per core (two on a Pi-class board); a
/// blocked thread there stalls every task of the process, so async code
/// hands such work to this pool and awaits the result.
///
/// Long-lived loops that block by design (the camera's streaming thread,
/// libcurl's transfers, button watchers) keep threads of their own.
public enum Blocking {
    /// Sixteen threads: `diagnose` runs its ten checks at once, each of
    /// which may hang on a dead link or a stuck camera until its timeout,
    /// and the queue's commits must still get a thread meanwhile. Idle
    /// threads cost a Pi only their stacks' touched pages.
    public static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Runs `body` on the shared pool and returns its result. Typed throws
    /// pass the module's own error through unchanged.
    ///
    /// The work runs even when the calling task is cancelled: a shutdown must
    /// still record that an upload stopped (NIO's `runIfActive` would throw
    /// `CancellationError` instead and lose that write).
    public static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            pool.submit { state in
                // `.cancelled` only when the pool itself is shut down, which never happens.
                precondition(state == .active, "the blocking pool stopped")
                continuation.resume(returning: Result { () throws(E) -> T in try body() })
            }
        }
        return try result.get()
    }
}
