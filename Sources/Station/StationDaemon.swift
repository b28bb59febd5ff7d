import Basics
import Config
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Tells systemd how the daemon is doing: `WATCHDOG=1` while every loop
/// makes its rounds (see `WatchdogPolicy`), `STATUS=` whenever the one-line
/// summary changes, and `STOPPING=1` as soon as a graceful shutdown begins.
public struct NotifyService: Service {
    let notifier: SystemdNotifier
    let monitor: LoopMonitor
    let status: @Sendable () async -> String
    /// Keeps what was sent where `telestation diagnose` can read it.
    let recorder: NotifyRecorder?
    /// How often to refresh STATUS when the watchdog is off or slower.
    let statusInterval: Duration
    let logger: Logger

    public init(notifier: SystemdNotifier, monitor: LoopMonitor, statusInterval: Duration = .seconds(5),
                recorder: NotifyRecorder? = nil, logger: Logger, status: @escaping @Sendable () async -> String) {
        self.notifier = notifier
        self.recorder = recorder
        self.monitor = monitor
        self.status = status
        self.statusInterval = statusInterval
        self.logger = logger
    }

    public func run() async throws {
        let notifier = self.notifier
        let logger = self.logger
        let recorder = self.recorder
        await withGracefulShutdownHandler {
            try? await cancelWhenGracefulShutdown { try await loop() }
        } onGracefulShutdown: {
            do {
                try notifier.send(.stopping, .status("stopping"))
                recorder?.note([.stopping, .status("stopping")])
            } catch { logger.warning("sd_notify: \(error)") }
        }
    }

    private func loop() async throws {
        let clock = ContinuousClock()
        let pingEvery = notifier.environment.pingInterval
        let tick = pingEvery.map { min($0, statusInterval) } ?? statusInterval
        var nextPing = pingEvery.map { clock.now + $0 }
        var lastStatus = ""
        var lastStalled: [LoopName] = []
        while true {
            try await Task.sleep(for: tick)
            if let due = nextPing, clock.now >= due, let pingEvery {
                // After a long suspension (a loaded board), restart the cadence instead of catching up.
                nextPing = max(due + pingEvery, clock.now)
                switch monitor.tick() {
                case .ping:
                    send(.watchdog)
                    if !lastStalled.isEmpty { logger.notice("loops running again; watchdog pings resumed") }
                    lastStalled = []
                case .withhold(let stalled):
                    if stalled != lastStalled {
                        logger.error("no round from \(stalled.map(\.rawValue).joined(separator: ", ")) loop since the last watchdog ping; withholding WATCHDOG=1")
                    }
                    lastStalled = stalled
                }
            }
            let line = await status()
            if line != lastStatus {
                send(.status(line))
                lastStatus = line
            }
            recorder?.flush()
        }
    }

    private func send(_ field: NotifyField) {
        do {
            try notifier.send(field)
            recorder?.note([field])
        } catch { logger.warning("sd_notify: \(error)") }
    }
}

/// A service the daemon keeps running, restarting it with backoff when it fails.
public struct ManagedService: Sendable {
    public var name: String
    public var policy: RestartPolicy
    public var make: @Sendable () async throws -> any Service

    public init(name: String, policy: RestartPolicy = RestartPolicy(), make: @escaping @Sendable () async throws -> any Service) {
        self.name = name
        self.policy = policy
        self.make = make
    }
}

/// `telestation run`: the HTTP control API and kiosk page, the caller's
/// capture/upload/retention services, and the systemd notify protocol, all
/// under one `ServiceGroup` that shuts down gracefully on SIGTERM and SIGINT.
///
/// The caller composes the real modules into a `StationBackend` and the
/// services. The capture and upload loops among them call
/// `monitor.beat(.capture)` / `monitor.beat(.upload)` once per round —
/// idle rounds included, and for the uplink also from the transfer's progress
/// callback, so a slow chunk is not mistaken for a wedge — at least once per
/// half `WatchdogSec=` (30 s with the shipped unit).
public struct StationDaemon: Service {
    public let config: StationConfig
    public let backend: any StationBackend
    public let monitor: LoopMonitor
    public let services: [ManagedService]
    public let notifier: SystemdNotifier
    /// nil: from `kiosk.case_id_pattern`.
    public let caseIds: CaseIdPolicy?
    public let logger: Logger
    /// Longest time services get to finish after SIGTERM before they are
    /// cancelled; well inside the unit's TimeoutStopSec=30s.
    public var shutdownTimeout: Duration = .seconds(20)
    /// Signals that start a graceful shutdown; empty when the daemon runs
    /// inside another `ServiceGroup` that owns the signals.
    public var gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]
    /// Where to keep the `NotifyRecord` for `telestation diagnose`; nil: nowhere.
    public var notifyRecordPath: String?
    /// Called once the HTTP port is bound, with the actual address.
    public var onListening: @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    private let boundAddress = Locked<(host: String, port: Int)?>(nil)
    private let readiness = Locked(ReadinessGate())
    private let recorder = Locked<NotifyRecorder?>(nil)

    public init(config: StationConfig, backend: any StationBackend, monitor: LoopMonitor, services: [ManagedService],
                notifier: SystemdNotifier = SystemdNotifier(), caseIds: CaseIdPolicy? = nil,
                logger: Logger = Logger(label: "telestation")) {
        self.config = config
        self.backend = backend
        self.monitor = monitor
        self.services = services
        self.notifier = notifier
        self.caseIds = caseIds
        self.logger = logger
    }

    /// The address the HTTP server is listening on, once bound (useful with port 0).
    /// The token the control API requires (`kiosk.token_file`); nil: none.
    public var accessToken: String?

    public var listeningAddress: (host: String, port: Int)? { boundAddress.withLock { $0 } }

    /// Runs until one of `gracefulShutdownSignals` arrives (or the enclosing
    /// service group shuts down), then shuts down gracefully.
    public func run() async throws {
        let onListening = self.onListening
        let shutdown = ShutdownSignal()
        let recorder = notifyRecordPath.map { NotifyRecorder(path: $0, environment: notifier.environment, logger: logger) }
        self.recorder.withLock { $0 = recorder }
        let api = ControlAPI(backend: backend, language: config.kiosk.language,
                             caseIds: try caseIds ?? CaseIdPolicy(config: config), shutdown: shutdown,
                             accessToken: accessToken, logger: logger)
        let (host, port) = try ControlAddress.bind(config.kiosk.listen)
        if !KioskAccess.isLoopback(host) {
            if accessToken == nil {
                logger.warning("kiosk.listen \(config.kiosk.listen) is reachable from the network, and the control API has no access token; set kiosk.token_file")
            } else {
                logger.notice("kiosk.listen \(config.kiosk.listen) is reachable from the network: requests need the kiosk token")
            }
        }
        let daemon = self
        let app = Application(
            router: api.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "telestation"),
            onServerRunning: { channel in
                let bound = (host, channel.localAddress?.port ?? port)
                daemon.boundAddress.withLock { $0 = bound }
                daemon.logger.info("kiosk and control API on http://\(bound.0):\(bound.1)/")
                onListening(bound.0, bound.1)
                daemon.mark(.portBound)
            },
            logger: logger)

        // Order matters on shutdown: ServiceGroup stops services in reverse,
        // so the notifier (last) says STOPPING=1 first, then the HTTP server
        // ends its previews, then the loops persist their state.
        var configs: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for s in services {
            configs.append(.init(service: RestartingService(name: s.name, policy: s.policy, logger: logger, make: s.make)))
        }
        configs.append(.init(service: RecoveryService(backend: backend, logger: logger) { daemon.mark(.queueRecovered) },
                             successTerminationBehavior: .ignore))
        configs.append(.init(service: RestartingService(name: "http", logger: logger) { app }))
        configs.append(.init(service: ShutdownTrip(signal: shutdown)))
        let backend = self.backend
        configs.append(.init(service: NotifyService(notifier: notifier, monitor: monitor, recorder: recorder, logger: logger) {
            await backend.statusLine().render()
        }))

        var groupConfig = ServiceGroupConfiguration(services: configs, gracefulShutdownSignals: gracefulShutdownSignals,
                                                    logger: logger)
        groupConfig.maximumGracefulShutdownDuration = shutdownTimeout
        groupConfig.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: groupConfig).run()
    }

    private func mark(_ condition: ReadinessGate.Condition) {
        guard readiness.withLock({ $0.mark(condition) }) else { return }
        let backend = self.backend
        let notifier = self.notifier
        let logger = self.logger
        let recorder = self.recorder.withLock { $0 }
        Task {
            let line = await backend.statusLine().render()
            do {
                try notifier.send(.ready, .status(line))
                recorder?.note([.ready, .status(line)])
            } catch { logger.warning("sd_notify: \(error)") }
            logger.info("ready: \(line)")
        }
    }
}

/// Recovers the queue once at start, retrying with backoff: READY waits for it.
struct RecoveryService: Service {
    let backend: any StationBackend
    let logger: Logger
    let done: @Sendable () -> Void

    func run() async throws {
        var policy = RestartPolicy(initial: .seconds(1), maximum: .seconds(30))
        while !Task.isShuttingDownGracefully {
            do {
                try await backend.recover()
                done()
                return
            } catch {
                let delay = policy.failed(after: .zero)
                logger.error("queue recovery failed; retrying in \(delay)", metadata: ["error": "\(error)"])
                do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) } } catch { return }
            }
        }
    }
}

/// Trips the shutdown signal that ends long-lived HTTP responses; placed
/// after the HTTP server in the group so it is told first on shutdown.
struct ShutdownTrip: Service {
    let signal: ShutdownSignal
    func run() async throws {
        try? await gracefulShutdown()
        signal.trip()
    }
}
