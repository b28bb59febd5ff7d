import Logging
import ServiceLifecycle

/// How long to wait before restarting a failed service: doubling from
/// `initial` up to `maximum`, back to `initial` once a run lasted `stableAfter`.
/// A camera unplugged for an hour thus costs one retry a minute, not a busy loop,
/// and a service that fails once a day restarts quickly.
public struct RestartPolicy: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var stableAfter: Duration
    public private(set) var consecutiveFailures = 0

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60), stableAfter: Duration = .seconds(120)) {
        self.initial = initial
        self.maximum = maximum
        self.stableAfter = stableAfter
    }

    /// Records a failure after a run of `ranFor` and returns the delay before the next start.
    public mutating func failed(after ranFor: Duration) -> Duration {
        if ranFor >= stableAfter { consecutiveFailures = 0 }
        consecutiveFailures += 1
        var delay = initial
        for _ in 1..<consecutiveFailures {
            delay *= 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }
}

/// Runs a service and, when it throws or returns while the daemon is not
/// shutting down, starts a fresh instance after a `RestartPolicy` delay — so
/// a failing camera or uplink never takes the kiosk and the queue down with it.
///
/// The inner service runs in this service's task, so it sees the group's
/// graceful shutdown exactly as if it had been added to the group directly.
public struct RestartingService: Service, CustomStringConvertible {
    public let name: String
    private let make: @Sendable () async throws -> any Service
    private let policy: RestartPolicy
    private let logger: Logger
    private let onRestart: @Sendable (_ attempt: Int, _ error: (any Error)?) -> Void

    /// - Parameters:
    ///   - make: builds a fresh instance for every start; a service that
    ///     failed is not reused, since its state is suspect.
    ///   - onRestart: observes each restart (for status and tests).
    public init(name: String, policy: RestartPolicy = RestartPolicy(), logger: Logger,
                onRestart: @escaping @Sendable (_ attempt: Int, _ error: (any Error)?) -> Void = { _, _ in },
                make: @escaping @Sendable () async throws -> any Service) {
        self.name = name
        self.make = make
        self.policy = policy
        self.logger = logger
        self.onRestart = onRestart
    }

    public var description: String { "RestartingService(\(name))" }

    public func run() async throws {
        var policy = self.policy
        let clock = ContinuousClock()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = clock.now
            var failure: (any Error)?
            do {
                try await make().run()
            } catch {
                failure = error
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            let delay = policy.failed(after: clock.now - started)
            if let failure {
                logger.error("\(name) failed; restarting in \(delay)", metadata: ["error": "\(failure)"])
            } else {
                logger.error("\(name) stopped unexpectedly; restarting in \(delay)")
            }
            onRestart(policy.consecutiveFailures, failure)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                return
            }
        }
    }
}
