import CInput
import Foundation
import Logging

/// Watches one key on an evdev input device (the camera's snapshot button,
/// a foot switch, a keyboard) on a thread of its own.
///
/// Hot-plug: `locate` is asked for the device path before every open, so a
/// camera or foot switch that is unplugged and plugged back in is found
/// again (under a new eventN if need be) within about a second. A device
/// that vanishes mid-read (ENODEV, POLLHUP) is closed and looked for again.
public final class EvdevButtonWatcher: TriggerWatcher {
    public let kind: TriggerKind
    public let key: UInt16
    public let keyName: String
    private let locate: @Sendable () -> String?
    /// What `locate` looks for, for the state while it finds nothing.
    private let lookingFor: String
    private let onPress: @Sendable (TriggerPress) -> Void
    private let logger: Logger
    private let debounceWindow: Double
    private let thread: WatcherThread
    /// How long to wait before looking for a missing device again.
    let retryInterval: Double

    /// - Parameters:
    ///   - locate: the device path to open, or nil while there is none; called on the watcher's thread.
    public init(kind: TriggerKind, key: UInt16, keyName: String, debounce: Double, retryInterval: Double = 1,
                lookingFor: String = "input device", logger: Logger = Logger(label: "telestation.trigger"),
                locate: @escaping @Sendable () -> String?, onPress: @escaping @Sendable (TriggerPress) -> Void) {
        self.kind = kind
        self.key = key
        self.keyName = keyName
        self.debounceWindow = debounce
        self.retryInterval = retryInterval
        self.logger = logger
        self.locate = locate
        self.lookingFor = lookingFor
        self.onPress = onPress
        thread = WatcherThread(TriggerDeviceState(kind: kind, connected: false, device: "", detail: "not started"))
    }

    public var state: TriggerDeviceState { thread.state }
    public func start() { thread.start(name: "telestation-\(kind.rawValue)") { [self] in run() } }
    public func stop() { thread.stop() }
    private var stopped: Bool { thread.stopped }

    private func set(_ connected: Bool, _ device: String, _ detail: String?) {
        let changed = thread.set(TriggerDeviceState(kind: kind, connected: connected, device: device, detail: detail))
        guard changed else { return }
        if connected {
            logger.info("\(kind.rawValue): watching \(keyName) on \(device)")
        } else {
            logger.notice("\(kind.rawValue): \(detail ?? "no device")")
        }
    }

    private func run() {
        var debouncer = TriggerDebouncer(window: debounceWindow)
        while !stopped {
            guard let path = locate() else {
                set(false, lookingFor, kind == .cameraButton ? "the camera has no snapshot button input device (or is not connected)"
                                                             : "\(lookingFor) is not there (unplugged?); looking again every \(Int(retryInterval)) s")
                sleepUnlessStopped(retryInterval) { stopped }
                continue
            }
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else {
                let e = errno
                let why = e == EACCES
                    ? "cannot open \(path): permission denied — add the telestation user to group input"
                    : "cannot open \(path): \(String(cString: strerror(e)))"
                set(false, path, why)
                sleepUnlessStopped(retryInterval) { stopped }
                continue
            }
            let name = Self.deviceName(fd) ?? path
            guard Self.hasKey(fd, key) else {
                close(fd)
                set(false, path, "\(path) (\(name)) has no key \(keyName)")
                sleepUnlessStopped(max(retryInterval, 5)) { stopped }
                continue
            }
            set(true, "\(path) (\(name))", nil)
            debouncer.reset()
            readEvents(fd, device: "\(path) (\(name))", debouncer: &debouncer)
            close(fd)
            debouncer.reset()
            if !stopped { set(false, path, "\(path) went away; waiting for it to come back") }
        }
    }

    /// Reads until the device fails or the watcher stops.
    private func readEvents(_ fd: Int32, device: String, debouncer: inout TriggerDebouncer) {
        let size = Int(ts_input_event_size())
        var buffer = [UInt8](repeating: 0, count: size * 64)
        while !stopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 250)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if ready == 0 { continue }
            if pfd.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && pfd.revents & Int16(POLLIN) == 0 { return }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return  // ENODEV: unplugged
            }
            if n == 0 { return }
            let now = monotonicSeconds()
            for start in stride(from: 0, to: n - size + 1, by: size) {
                var type: UInt16 = 0, code: UInt16 = 0, value: Int32 = 0
                buffer.withUnsafeBytes { ts_input_event_fields($0.baseAddress! + start, &type, &code, &value) }
                guard type == TS_EV_KEY, code == key, let edge = TriggerDebouncer.Edge(evdevValue: value) else { continue }
                if debouncer.handle(edge, at: now) {
                    onPress(TriggerPress(kind: kind, device: device))
                }
            }
        }
    }

    /// EVIOCGNAME.
    static func deviceName(_ fd: Int32) -> String? {
        var name = [CChar](repeating: 0, count: 256)
        guard ts_evdev_name(fd, &name, UInt32(name.count - 1)) >= 0 else { return nil }
        let s = String(cString: name)
        return s.isEmpty ? nil : s
    }

    /// EVIOCGBIT(EV_KEY): whether the device can send `key` at all.
    static func hasKey(_ fd: Int32, _ key: UInt16) -> Bool {
        var bits = [UInt8](repeating: 0, count: Int(TS_KEY_MAX) / 8 + 1)
        guard ts_evdev_key_bits(fd, &bits, UInt32(bits.count)) >= 0 else { return false }
        return bits[Int(key) / 8] & (1 << (key % 8)) != 0
    }
}
