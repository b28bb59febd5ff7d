import Foundation

/// Finds input devices through sysfs, with an injectable root for tests.
public struct InputDeviceLookup: Sendable {
    public var sysRoot: String
    public var devRoot: String

    public init(sysRoot: String = "/sys", devRoot: String = "/dev") {
        self.sysRoot = sysRoot
        self.devRoot = devRoot
    }

    /// The evdev nodes that belong to the same USB device as a video node:
    /// uvcvideo registers the camera's snapshot button as an input device
    /// under the camera's USB interface. `/dev/videoN` → sysfs `device` link
    /// → the USB device (the directory holding idVendor) → every
    /// `input/inputM/eventK` below it → `/dev/input/eventK`.
    public func eventNodes(sameUSBDeviceAs videoPath: String) -> [String] {
        let name = ((videoPath as NSString).resolvingSymlinksInPath as NSString).lastPathComponent
        var dir = ("\(sysRoot)/class/video4linux/\(name)/device" as NSString).resolvingSymlinksInPath
        var usbDevice: String?
        for _ in 0..<3 {
            if FileManager.default.fileExists(atPath: "\(dir)/idVendor") { usbDevice = dir; break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        guard let usbDevice else { return [] }
        var found: [String] = []
        collect(usbDevice, depth: 0, into: &found)
        return found.sorted { eventNumber($0) < eventNumber($1) }.map { "\(devRoot)/input/\($0)" }
    }

    /// `eventK` directories below `dir` whose parent is an `inputM` in an `input` directory.
    private func collect(_ dir: String, depth: Int, into found: inout [String]) {
        guard depth < 5, let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for entry in entries {
            let path = "\(dir)/\(entry)"
            // sysfs links back up (subsystem, driver, port): follow only real directories.
            var isDir: ObjCBool = false
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == nil,
                  FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
            let parent = (dir as NSString).lastPathComponent
            let grandparent = ((dir as NSString).deletingLastPathComponent as NSString).lastPathComponent
            if entry.hasPrefix("event"), parent.hasPrefix("input"), grandparent == "input" {
                found.append(entry)
            } else {
                collect(path, depth: depth + 1, into: &found)
            }
        }
    }

    private func eventNumber(_ name: String) -> Int { Int(name.dropFirst("event".count)) ?? Int.max }
}
