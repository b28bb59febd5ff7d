/// Turns the raw edges of a button into captures: one per press, however
/// the contacts bounce or the key auto-repeats. Times are seconds on a
/// monotonic clock.
public struct TriggerDebouncer: Sendable, Equatable {
    public enum Edge: Sendable, Equatable {
        case press, release
        /// evdev's value 2 while a key is held down.
        case autorepeat

        /// From an evdev `EV_KEY` event value (0 release, 1 press, 2 repeat).
        public init?(evdevValue: Int32) {
            switch evdevValue {
            case 0: self = .release
            case 1: self = .press
            case 2: self = .autorepeat
            default: return nil
            }
        }
    }

    /// Presses closer together than this after a capture count as bounce.
    public let window: Double
    public private(set) var pressed = false
    public private(set) var lastFired: Double?

    public init(window: Double) {
        self.window = window
    }

    /// Whether this edge is a new press that should capture.
    public mutating func handle(_ edge: Edge, at time: Double) -> Bool {
        switch edge {
        case .autorepeat:
            return false
        case .release:
            pressed = false
            return false
        case .press:
            guard !pressed else { return false }
            pressed = true
            // A clock that went backwards must not lock the button out.
            if let last = lastFired, time >= last, time - last < window { return false }
            lastFired = time
            return true
        }
    }

    /// The device went away (its release may never come) or was opened
    /// again: the next press counts, unless it falls inside the window.
    public mutating func reset() {
        pressed = false
    }
}
