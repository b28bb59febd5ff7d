import CGPIOD
import Foundation
import Logging
import Synchronization

/// A push button between a GPIO line and ground, read through libgpiod
/// (the line is requested active-low with the internal pull-up, so a
/// press reads as 1). Runs on its own thread; a chip or line that cannot be
/// had (not there, taken by another program) is retried every few seconds.
public final class GPIOButtonWatcher: TriggerWatcher {
    public let chip: String
    public let line: Int
    private let debounceWindow: Double
    private let onPress: @Sendable (TriggerPress) -> Void
    private let logger: Logger
    private let thread: WatcherThread

    public init(chip: String, line: Int, debounce: Double, logger: Logger = Logger(label: "telestation.trigger"),
                onPress: @escaping @Sendable (TriggerPress) -> Void) {
        self.chip = chip
        self.line = line
        self.debounceWindow = debounce
        self.onPress = onPress
        self.logger = logger
        thread = WatcherThread(TriggerDeviceState(kind: .gpioButton, connected: false, device: "\(chip):\(line)", detail: "not started"))
    }

    public var state: TriggerDeviceState { thread.state }
    public func start() { thread.start(name: "telestation-gpio-button") { [self] in run() } }
    public func stop() { thread.stop() }
    private var stopped: Bool { thread.stopped }

    private func set(_ connected: Bool, _ detail: String?) {
        let changed = thread.set(TriggerDeviceState(kind: .gpioButton, connected: connected, device: "\(chip):\(line)", detail: detail))
        guard changed else { return }
        if connected { logger.info("gpio_button: watching \(chip) line \(line)") } else { logger.notice("gpio_button: \(detail ?? "")") }
    }

    private func run() {
        var debouncer = TriggerDebouncer(window: debounceWindow)
        while !stopped {
            guard let c = gpiod_chip_open_lookup(chip) else {
                set(false, "cannot open GPIO chip \(chip): \(String(cString: strerror(errno))) — check trigger.gpio_chip (see `gpiodetect`)")
                sleepUnlessStopped(5) { stopped }
                continue
            }
            defer { gpiod_chip_close(c) }
            guard let l = gpiod_chip_get_line(c, UInt32(line)),
                  gpiod_line_request_both_edges_events_flags(l, "telestation", TS_GPIOD_FLAG_ACTIVE_LOW | TS_GPIOD_FLAG_BIAS_PULL_UP) == 0 else {
                set(false, "cannot use line \(line) of \(chip): \(String(cString: strerror(errno))) — check trigger.gpio_line, and that no other program holds it (`gpioinfo`)")
                sleepUnlessStopped(5) { stopped }
                continue
            }
            set(true, nil)
            debouncer.reset()
            if gpiod_line_get_value(l) == 1 { _ = debouncer.handle(.press, at: -Double.infinity) }
            while !stopped {
                let r = ts_gpiod_wait(l, 250)
                if r < 0 { break }
                if r == 0 { continue }
                var event = gpiod_line_event()
                guard gpiod_line_event_read(l, &event) == 0 else { break }
                // The level after the edge, not the edge's direction: bounce can
                // deliver edges out of step with the level.
                let pressed = gpiod_line_get_value(l) == 1
                if debouncer.handle(pressed ? .press : .release, at: monotonicSeconds()) {
                    onPress(TriggerPress(kind: .gpioButton, device: "\(chip):\(line)"))
                }
            }
            gpiod_line_release(l)
            if !stopped { set(false, "lost line \(line) of \(chip); retrying") }
        }
    }
}

/// An LED on a GPIO line: lit while a capture runs, blinks when a still was taken.
public final class GPIOLED: Sendable {
    public let chip: String
    public let line: Int
    private let handle: Mutex<(chip: OpaquePointer?, line: OpaquePointer?, generation: Int)>
    private let logger: Logger

    /// Nil when the line cannot be had; the reason is logged, capture works without the LED.
    public init?(chip: String, line: Int, logger: Logger = Logger(label: "telestation.trigger")) {
        self.chip = chip
        self.line = line
        self.logger = logger
        guard let c = gpiod_chip_open_lookup(chip) else {
            logger.warning("LED: cannot open GPIO chip \(chip): \(String(cString: strerror(errno))) — the LED stays off")
            return nil
        }
        guard let l = gpiod_chip_get_line(c, UInt32(line)), gpiod_line_request_output(l, "telestation", 0) == 0 else {
            logger.warning("LED: cannot use line \(line) of \(chip): \(String(cString: strerror(errno))) — the LED stays off")
            gpiod_chip_close(c)
            return nil
        }
        handle = Mutex((c, l, 0))
    }

    deinit {
        handle.withLock { h in
            if let l = h.line { gpiod_line_release(l) }
            if let c = h.chip { gpiod_chip_close(c) }
        }
    }

    private func set(_ on: Bool) {
        handle.withLock { h in if let l = h.line { _ = gpiod_line_set_value(l, on ? 1 : 0) } }
    }

    /// On while capturing.
    public func capturing() {
        handle.withLock { $0.generation += 1 }
        set(true)
    }

    /// Off, then three short blinks on success; off on failure.
    public func finished(success: Bool) {
        let generation = handle.withLock { h -> Int in h.generation += 1; return h.generation }
        set(false)
        guard success else { return }
        let thread = Thread { [self] in
            for _ in 0..<3 {
                guard handle.withLock({ $0.generation }) == generation else { return }
                usleep(120_000); set(true)
                usleep(120_000); set(false)
            }
        }
        thread.name = "telestation-led"
        thread.start()
    }
}
