import Testing
@testable import Config
@testable import ConfigFile

@Suite struct TriggerConfigTests {
    let base = "[station]\nid = \"ps-1\"\n"

    @Test func defaultsWatchTheCameraButtonOnly() throws {
        let c = try StationConfig.parse(base)
        #expect(c.trigger.cameraButton)
        #expect(c.trigger.evdevDevice == nil && c.trigger.gpioLine == nil)
        #expect(c.trigger.evdevKey.code == 212)
        #expect(c.trigger.debounce == 0.3)
        #expect(!c.trigger.autoSend)
    }

    @Test func footSwitchGPIOAndLED() throws {
        let c = try StationConfig.parse(base + """
            [trigger]
            camera_button = false
            evdev_device = "/dev/input/by-id/usb-PCsensor_FootSwitch-event-kbd"
            evdev_key = "key_b"
            gpio_chip = "gpiochip4"
            gpio_line = 17
            gpio_led_line = 27
            debounce = "150ms"
            auto_send = true
            """)
        #expect(!c.trigger.cameraButton)
        #expect(c.trigger.evdevDevice == "/dev/input/by-id/usb-PCsensor_FootSwitch-event-kbd")
        #expect(c.trigger.evdevKey == InputKey("KEY_B"))
        #expect(c.trigger.evdevKey.code == 48)
        #expect(c.trigger.gpioChip == "gpiochip4" && c.trigger.gpioLine == 17 && c.trigger.gpioLEDLine == 27)
        #expect(c.trigger.debounce == 0.15)
        #expect(c.trigger.autoSend)
    }

    @Test func keyNumbersAndNames() {
        #expect(InputKey("212")?.name == "KEY_CAMERA")
        #expect(InputKey("KEY_F12")?.code == 88)
        #expect(InputKey("BTN_LEFT")?.code == 0x110)
        #expect(InputKey("KEY_0")?.code == 11)
        #expect(InputKey("KEY_NOPE") == nil)
        #expect(InputKey("0") == nil)
    }

    @Test(arguments: [
        ("evdev_key = \"KEY_FOOT\"", "trigger.evdev_key", "is not a key name"),
        ("evdev_device = \"event3\"", "trigger.evdev_device", "is not an input device path"),
        ("gpio_line = 5000", "trigger.gpio_line", "out of range"),
        ("debounce = \"0s\"", "trigger.debounce", "out of range"),
        ("camera_button = \"yes\"", "trigger.camera_button", "wrong type"),
        ("button = true", "trigger.button", "unknown key"),
    ])
    func badValuesNameTheKey(line: String, key: String, message: String) {
        do {
            _ = try StationConfig.parse(base + "[trigger]\n" + line + "\n")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.key == key)
            #expect(error.message.contains(message), "\(error)")
            #expect(error.line == 4)
            #expect(!error.description.contains("\n"))
        }
    }
}
