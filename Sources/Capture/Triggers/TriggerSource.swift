import Foundation
import Synchronization

/// Which kind of button took a still; shown on the kiosk and in logs.
public enum TriggerKind: String, Sendable, Codable, CaseIterable {
    /// The camera's own snapshot button.
    case cameraButton = "camera_button"
    /// A foot switch or keyboard key (`trigger.evdev_device`).
    case key
    /// A push button on a GPIO line.
    case gpioButton = "gpio_button"
    /// The kiosk's capture button or the control API.
    case kiosk
}

/// One press that passed the debouncer.
public struct TriggerPress: Sendable, Equatable {
    public var kind: TriggerKind
    /// The device it came from: an evdev path and name, or chip:line.
    public var device: String
    public var at: Date

    public init(kind: TriggerKind, device: String, at: Date = Date()) {
        self.kind = kind
        self.device = device
        self.at = at
    }
}

/// Where a button stands, for status and diagnose.
public struct TriggerDeviceState: Sendable, Equatable, Codable {
    public var kind: TriggerKind
    public var connected: Bool
    /// The device in use, or what was looked for.
    public var device: String
    /// Why it is not connected, for people.
    public var detail: String?

    public init(kind: TriggerKind, connected: Bool, device: String, detail: String? = nil) {
        self.kind = kind
        self.connected = connected
        self.device = device
        self.detail = detail
    }
}

/// A button watcher: runs on its own thread, survives its device going
/// away, and calls back once per debounced press.
public protocol TriggerWatcher: AnyObject, Sendable {
    var state: TriggerDeviceState { get }
    func start()
    func stop()
}

/// Monotonic seconds, for debouncing (wall-clock changes must not matter).
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps up to `seconds` in short slices, returning early once `stopped` says so.
func sleepUnlessStopped(_ seconds: Double, _ stopped: () -> Bool) {
    let end = monotonicSeconds() + seconds
    while !stopped(), monotonicSeconds() < end {
        usleep(100_000)
    }
}

/// The thread, stop flag and reported state every watcher has.
final class WatcherThread: Sendable {
    private struct Shared {
        var state: TriggerDeviceState
        var stopped = false
        var running = false
    }
    private let shared: Mutex<Shared>

    init(_ initial: TriggerDeviceState) {
        shared = Mutex(Shared(state: initial))
    }

    var state: TriggerDeviceState { shared.withLock { $0.state } }
    var stopped: Bool { shared.withLock { $0.stopped } }

    /// Runs `body` on a new thread unless one is running already.
    func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let begin = shared.withLock { s -> Bool in
            guard !s.running else { return false }
            s.running = true
            s.stopped = false
            return true
        }
        guard begin else { return }
        let thread = Thread { [self] in
            body()
            shared.withLock { $0.running = false }
        }
        thread.name = name
        thread.start()
    }

    /// Returns at once; the thread notices within its poll interval.
    func stop() { shared.withLock { $0.stopped = true } }

    /// Whether the state changed (so it is worth a log line).
    func set(_ new: TriggerDeviceState) -> Bool {
        shared.withLock { s in
            defer { s.state = new }
            return s.state != new
        }
    }
}
