import Foundation

extension StationConfig {
    /// `[trigger]`: physical buttons that take a still as the kiosk's capture button does.
    public struct Trigger: Sendable, Equatable {
        /// The snapshot button of the active camera itself (`KEY_CAMERA` on
        /// the input device uvcvideo creates for the same USB device).
        public var cameraButton: Bool = true
        /// A foot switch or keyboard: an evdev node such as `/dev/input/by-id/…-event-kbd`.
        public var evdevDevice: String? = nil
        /// The key on `evdevDevice` that captures, as the kernel names it.
        public var evdevKey: InputKey = InputKey("KEY_CAMERA")!
        /// GPIO chip (`gpiochip0`, or a /dev/gpiochipN path) of the button and LED lines.
        public var gpioChip: String = "gpiochip0"
        /// A push button wired between this line and ground; nil: no GPIO button.
        public var gpioLine: Int? = nil
        /// An LED on the same chip, for any trigger: on while capturing, blinks on success.
        public var gpioLEDLine: Int? = nil
        /// Presses closer together than this count once (seconds).
        public var debounce: Double = 0.3
        /// A still from a button goes straight to the queue instead of the review screen.
        public var autoSend: Bool = false
    }
}

/// A key code from `linux/input-event-codes.h` with its kernel name.
public struct InputKey: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let code: UInt16

    /// `KEY_CAMERA`, `BTN_LEFT`, `KEY_B`…, or a decimal code (`212`).
    public init?(_ text: String) {
        let upper = text.trimmingCharacters(in: .whitespaces).uppercased()
        if let code = UInt16(upper), code > 0, code < 0x300 {
            self.code = code
            self.name = Self.codes.first { $0.value == code }?.key ?? "code \(code)"
        } else if let code = Self.codes[upper] {
            self.code = code
            self.name = upper
        } else {
            return nil
        }
    }

    public var description: String { name }

    /// The keys a capture button, foot switch or keyboard is likely to send
    /// (values from linux/input-event-codes.h).
    static let codes: [String: UInt16] = {
        var c: [String: UInt16] = [
            "KEY_ESC": 1, "KEY_BACKSPACE": 14, "KEY_TAB": 15, "KEY_ENTER": 28, "KEY_LEFTCTRL": 29,
            "KEY_LEFTSHIFT": 42, "KEY_RIGHTSHIFT": 54, "KEY_LEFTALT": 56, "KEY_SPACE": 57, "KEY_CAPSLOCK": 58,
            "KEY_HOME": 102, "KEY_UP": 103, "KEY_PAGEUP": 104, "KEY_LEFT": 105, "KEY_RIGHT": 106, "KEY_END": 107,
            "KEY_DOWN": 108, "KEY_PAGEDOWN": 109, "KEY_INSERT": 110, "KEY_DELETE": 111,
            "KEY_MUTE": 113, "KEY_VOLUMEDOWN": 114, "KEY_VOLUMEUP": 115, "KEY_POWER": 116, "KEY_PAUSE": 119,
            "KEY_PRINT": 210, "KEY_CAMERA": 212, "KEY_SOUND": 213, "KEY_OK": 0x160, "KEY_SELECT": 0x161,
            "KEY_PLAYPAUSE": 164, "KEY_NEXTSONG": 163, "KEY_PREVIOUSSONG": 165, "KEY_PLAYCD": 200, "KEY_PAUSECD": 201,
            "KEY_CAMERA_FOCUS": 0x210, "KEY_RECORD": 167, "KEY_PLAY": 207,
            "BTN_0": 0x100, "BTN_1": 0x101, "BTN_2": 0x102, "BTN_3": 0x103,
            "BTN_LEFT": 0x110, "BTN_RIGHT": 0x111, "BTN_MIDDLE": 0x112, "BTN_SIDE": 0x113, "BTN_EXTRA": 0x114,
            "BTN_TRIGGER": 0x120, "BTN_THUMB": 0x121, "BTN_SOUTH": 0x130, "BTN_EAST": 0x131,
        ]
        let letters: [(String, UInt16)] = [
            ("Q", 16), ("W", 17), ("E", 18), ("R", 19), ("T", 20), ("Y", 21), ("U", 22), ("I", 23), ("O", 24), ("P", 25),
            ("A", 30), ("S", 31), ("D", 32), ("F", 33), ("G", 34), ("H", 35), ("J", 36), ("K", 37), ("L", 38),
            ("Z", 44), ("X", 45), ("C", 46), ("V", 47), ("B", 48), ("N", 49), ("M", 50),
        ]
        for (l, v) in letters { c["KEY_" + l] = v }
        for (i, d) in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"].enumerated() { c["KEY_" + d] = UInt16(2 + i) }
        for i in 1...10 { c["KEY_F\(i)"] = UInt16(58 + i) }
        c["KEY_F11"] = 87
        c["KEY_F12"] = 88
        return c
    }()
}
