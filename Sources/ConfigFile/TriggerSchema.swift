import Config
import TOMLKit

extension ConfigSchema {
    /// `[trigger]` keys; kept apart from the other sections' keys for readability.
    static var triggerKeys: [ConfigKey] {
        [
            bool("trigger.camera_button", "Capture when the camera's own snapshot button (KEY_CAMERA) is pressed.",
                 example: "true") { c, v in c.trigger.cameraButton = v },
            text("trigger.evdev_device", "A foot switch or keyboard that captures: its /dev/input/by-id/... or /dev/input/eventN node.",
                 example: "\"/dev/input/by-id/usb-PCsensor_FootSwitch-event-kbd\"", optional: true) { v, c throws(KeyProblem) in
                guard v.hasPrefix("/dev/") else {
                    throw KeyProblem(message: "\"\(v)\" is not an input device path",
                                     fix: "use a path such as \"/dev/input/by-id/...-event-kbd\" (see `ls -l /dev/input/by-id`)")
                }
                c.trigger.evdevDevice = v
            },
            text("trigger.evdev_key", "The key on evdev_device that captures, as the kernel names it (KEY_CAMERA, KEY_B, BTN_LEFT ...) or its number.",
                 example: "\"KEY_CAMERA\"") { v, c throws(KeyProblem) in
                guard let key = InputKey(v) else {
                    throw KeyProblem(message: "\"\(v)\" is not a key name this station knows",
                                     fix: "use a name from linux/input-event-codes.h such as \"KEY_CAMERA\" or \"KEY_B\", or the key's number as `evtest` prints it")
                }
                c.trigger.evdevKey = key
            },
            text("trigger.gpio_chip", "GPIO chip of the button and LED lines below (Raspberry Pi: \"gpiochip0\").",
                 example: "\"gpiochip0\"") { v, c throws(KeyProblem) in
                guard !v.isEmpty, !v.contains(" ") else {
                    throw KeyProblem(message: "\"\(v)\" is not a GPIO chip", fix: "use its name or path, e.g. \"gpiochip0\" (see `gpiodetect`)")
                }
                c.trigger.gpioChip = v
            },
            int("trigger.gpio_line", "A push button wired between this line of gpio_chip and ground (BCM number on a Raspberry Pi).",
                example: "17", optional: true, range: 0...1023) { c, v in c.trigger.gpioLine = v },
            int("trigger.gpio_led_line", "Line offset of an LED: lit while capturing, blinks when a still is taken.",
                example: "27", optional: true, range: 0...1023) { c, v in c.trigger.gpioLEDLine = v },
            duration("trigger.debounce", "Presses closer together than this count as one.",
                     example: "\"300ms\"", range: 0.01...10) { c, v in c.trigger.debounce = v },
            bool("trigger.auto_send", "Send a still taken with a button straight to the upload queue instead of the review screen.",
                 example: "false") { c, v in c.trigger.autoSend = v },
        ]
    }

    static func bool(_ path: String, _ doc: String, example: String, _ store: @escaping (inout StationConfig, Bool) -> Void) -> ConfigKey {
        ConfigKey(path: path, doc: doc, example: example, optional: false, required: false) { v, c throws(KeyProblem) in
            guard let b = v.bool else { throw wrongType(v, "true or false") }
            store(&c, b)
        }
    }
}
