import Foundation
import Synchronization
import Testing
import Config
import ConfigFile
@testable import Capture

@Suite struct TriggerDebouncerTests {
    typealias Edge = TriggerDebouncer.Edge

    /// Which edges fire, in order.
    func fired(_ d: inout TriggerDebouncer, _ edges: [(Edge, Double)]) -> [Bool] {
        edges.map { d.handle($0.0, at: $0.1) }
    }

    @Test func onePressOneCaptureWhateverTheAutorepeat() {
        var d = TriggerDebouncer(window: 0.3)
        // Held down: the kernel repeats the key every ~33 ms.
        let held = (1...30).map { (Edge.autorepeat, 10 + Double($0) * 0.033) }
        let out = fired(&d, [(.press, 10)] + held + [(.release, 11.2), (.press, 12)])
        #expect(out == [true] + Array(repeating: false, count: 30) + [false, true])
    }

    @Test func contactBounceInsideTheWindowCountsOnce() {
        var d = TriggerDebouncer(window: 0.3)
        // Just past the window: a deliberate second press.
        let out = fired(&d, [(.press, 5.000), (.release, 5.002), (.press, 5.004), (.release, 5.150), (.press, 5.301)])
        #expect(out == [true, false, false, false, true])
    }

    @Test func aSecondPressWithoutReleaseIsIgnored() {
        var d = TriggerDebouncer(window: 0.1)
        #expect(fired(&d, [(.press, 1), (.press, 2), (.release, 3), (.press, 4)]) == [true, false, false, true])
    }

    @Test func resetAfterUnplugLetsTheNextPressCount() {
        var d = TriggerDebouncer(window: 0.3)
        #expect(fired(&d, [(.press, 1)]) == [true])
        // The device went away while held: its release never came.
        d.reset()
        #expect(fired(&d, [(.press, 2)]) == [true])
        // ...but a reset does not open the window early.
        d.reset()
        #expect(fired(&d, [(.press, 2.1)]) == [false])
    }

    @Test func aClockThatWentBackwardsDoesNotLockTheButtonOut() {
        var d = TriggerDebouncer(window: 0.3)
        #expect(fired(&d, [(.press, 100), (.release, 100.1), (.press, 50)]) == [true, false, true])
    }

    @Test func evdevValues() {
        #expect(Edge(evdevValue: 0) == .release)
        #expect(Edge(evdevValue: 1) == .press)
        #expect(Edge(evdevValue: 2) == .autorepeat)
        #expect(Edge(evdevValue: 3) == nil)
    }
}

/// A sysfs tree shaped like the kernel's for a UVC camera with a snapshot
/// button: the video node and the input device both under the camera's USB interface.
@Suite struct InputDeviceLookupTests {
    let root = NSTemporaryDirectory() + "telestation-sysfs-\(UUID().uuidString)"

    func mkdir(_ path: String) throws { try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true) }
    func write(_ path: String, _ text: String) throws { try text.write(toFile: root + path, atomically: true, encoding: .utf8) }
    func link(_ path: String, to target: String) throws { try FileManager.default.createSymbolicLink(atPath: root + path, withDestinationPath: target) }

    func makeCamera(usb: String, interface: String, video: String, event: String?, id: (String, String) = ("046d", "0825")) throws {
        let dev = "/sys/devices/pci0000:00/0000:00:14.0/usb1/\(usb)"
        try mkdir(dev + "/\(interface)/video4linux/\(video)")
        try write(dev + "/idVendor", id.0 + "\n")
        try write(dev + "/idProduct", id.1 + "\n")
        try mkdir("/sys/class/video4linux/\(video)")
        try link("/sys/class/video4linux/\(video)/device", to: root + dev + "/\(interface)")
        // sysfs links back up the tree; the lookup must not follow them.
        try link(dev + "/\(interface)/subsystem", to: root + "/sys/devices")
        if let event {
            let input = dev + "/\(interface)/input/input7"
            try mkdir(input + "/\(event)")
            try write(input + "/name", "UVC Camera (046d:0825)\n")
        }
    }

    @Test func findsTheButtonOfTheSameUSBCameraOnly() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try makeCamera(usb: "1-1", interface: "1-1:1.0", video: "video0", event: "event4")
        try makeCamera(usb: "1-2", interface: "1-2:1.0", video: "video2", event: "event9")
        let lookup = InputDeviceLookup(sysRoot: root + "/sys", devRoot: "/dev")
        #expect(lookup.eventNodes(sameUSBDeviceAs: "/dev/video0") == ["/dev/input/event4"])
        #expect(lookup.eventNodes(sameUSBDeviceAs: "/dev/video2") == ["/dev/input/event9"])
    }

    @Test func aCameraWithoutButtonOrWithoutUSBHasNone() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try makeCamera(usb: "1-1", interface: "1-1:1.0", video: "video0", event: nil)
        // vivid: a platform device, no idVendor anywhere above it.
        try mkdir("/sys/devices/platform/vivid.0/video4linux/video3")
        try mkdir("/sys/class/video4linux/video3")
        try link("/sys/class/video4linux/video3/device", to: root + "/sys/devices/platform/vivid.0")
        let lookup = InputDeviceLookup(sysRoot: root + "/sys")
        #expect(lookup.eventNodes(sameUSBDeviceAs: "/dev/video0").isEmpty)
        #expect(lookup.eventNodes(sameUSBDeviceAs: "/dev/video3").isEmpty)
        #expect(lookup.eventNodes(sameUSBDeviceAs: "/dev/video7").isEmpty)
    }
}

extension InputDeviceLookupTests {
    /// The shipped profiles (hardware/profiles) matched the way `devices` and `diagnose` do.
    @Test func devicesShowTheirProfile() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("hardware/profiles").path
        let profiles = try CameraProfile.loadAll(directory: shipped)
        try makeCamera(usb: "1-1", interface: "1-1:1.0", video: "video0", event: nil, id: ("A168", "0614"))
        try makeCamera(usb: "1-2", interface: "1-2:1.0", video: "video2", event: nil)
        let discovery = DeviceDiscovery()
        func device(_ path: String, _ card: String, _ driver: String) -> DeviceInfo {
            DeviceInfo(path: path, driver: driver, card: card, bus: "usb-0000:00:14.0-1", formats: [])
        }
        // The USB id wins over the generic uvcvideo driver match, whatever the card says.
        let dino = discovery.matchProfile(device("/dev/video0", "USB2.0 Camera", "uvcvideo"), in: profiles, sysRoot: root + "/sys")
        #expect(dino == MatchedProfile(id: "dinolite-microscope", name: "Dino-Lite USB microscope", matchedBy: "usb id a168:0614"))
        let derm = discovery.matchProfile(device("/dev/video2", "DermLite DL5 Camera", "uvcvideo"), in: profiles, sysRoot: root + "/sys")
        #expect(derm?.id == "uvc-dermatoscope" && derm?.matchedBy == "card name \"DermLite DL5 Camera\"")
        let webcam = discovery.matchProfile(device("/dev/video2", "HD Webcam C270", "uvcvideo"), in: profiles, sysRoot: root + "/sys")
        #expect(webcam?.id == "generic-uvc" && webcam?.matchedBy == "driver uvcvideo")
        var vivid = device("/dev/video5", "vivid", "vivid")
        vivid.profile = discovery.matchProfile(vivid, in: profiles, sysRoot: root + "/sys")
        #expect(vivid.profile == nil)
        // `devices --json` carries the match.
        var json = device("/dev/video0", "USB2.0 Camera", "uvcvideo")
        json.profile = dino
        let text = String(decoding: try JSONEncoder().encode(json), as: UTF8.self)
        #expect(text.contains("\"profile\":{") && text.contains("\"matchedBy\":\"usb id a168:0614\""))
    }
}

@Suite struct EvdevButtonWatcherTests {
    /// A path that is missing, then a file that is no input device: the
    /// watcher says why in its state, keeps looking, and never presses.
    @Test func missingAndWrongDevicesAreReportedNotFatal() async throws {
        let path = NSTemporaryDirectory() + "telestation-not-input-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let presses = Mutex(0)
        let watcher = EvdevButtonWatcher(kind: .key, key: 212, keyName: "KEY_CAMERA", debounce: 0.3, retryInterval: 0.1,
                                         lookingFor: path, locate: { FileManager.default.fileExists(atPath: path) ? path : nil },
                                         onPress: { _ in presses.withLock { $0 += 1 } })
        watcher.start()
        defer { watcher.stop() }
        // Generous bound: the watcher thread needs one round to look.
        #expect(await waitFor(seconds: 20) { watcher.state.detail?.hasPrefix("\(path) is not there") == true }, "\(watcher.state)")
        #expect(watcher.state.device == path)
        try Data("not an input device".utf8).write(to: URL(fileURLWithPath: path))
        #expect(await waitFor(seconds: 20) { watcher.state.detail?.contains("has no key KEY_CAMERA") == true }, "\(watcher.state)")
        #expect(!watcher.state.connected)
        #expect(presses.withLock { $0 } == 0)
    }

    func waitFor(seconds: Double, _ condition: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}

/// libgpiod itself, on a machine without that chip: the button reports why
/// it is not connected and keeps retrying, the LED is left out, nothing crashes.
@Suite struct GPIOButtonTests {
    @Test func aMissingChipIsReportedAndTheLEDLeftOut() async throws {
        let watcher = GPIOButtonWatcher(chip: "gpiochip-telestation-absent", line: 17, debounce: 0.3, onPress: { _ in
            Issue.record("a press from a chip that does not exist")
        })
        watcher.start()
        defer { watcher.stop() }
        // Generous bound: the watcher thread needs one round to try the chip.
        let end = Date().addingTimeInterval(20)
        while Date() < end, watcher.state.detail?.contains("cannot open GPIO chip") != true {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(watcher.state.detail?.contains("cannot open GPIO chip gpiochip-telestation-absent") == true, "\(watcher.state)")
        #expect(watcher.state.detail?.contains("gpiodetect") == true)
        #expect(!watcher.state.connected && watcher.state.device == "gpiochip-telestation-absent:17")
        #expect(GPIOLED(chip: "gpiochip-telestation-absent", line: 27) == nil)
    }
}
