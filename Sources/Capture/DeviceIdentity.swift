import Foundation

/// Who made a camera, which model it is and its serial number, for the
/// DICOM object's equipment module. USB cameras give all three in sysfs
/// (the USB device's `manufacturer`, `product` and `serial` strings);
/// others (CSI cameras, the `vivid` test driver) only their V4L2 card name.
public struct DeviceIdentity: Sendable, Equatable, Codable {
    public var manufacturer: String?
    public var model: String?
    public var serial: String?

    public init(manufacturer: String? = nil, model: String? = nil, serial: String? = nil) {
        self.manufacturer = manufacturer
        self.model = model
        self.serial = serial
    }

    /// Reads the identity of the capture node `path` (`/dev/video0` or a
    /// `/dev/v4l/by-id` link). `card` and `driver` come from VIDIOC_QUERYCAP.
    public static func of(_ path: String, card: String, driver: String, sysfs: String = "/sys") -> DeviceIdentity {
        let node = ((path as NSString).resolvingSymlinksInPath as NSString).lastPathComponent
        var identity = DeviceIdentity(manufacturer: nil, model: card.isEmpty ? nil : card, serial: nil)
        // The node's `device` link is the USB interface; its parent is the
        // USB device, which holds the strings. Walk up a few levels to find it.
        var dir = ("\(sysfs)/class/video4linux/\(node)/device" as NSString).resolvingSymlinksInPath
        for _ in 0..<3 {
            if FileManager.default.fileExists(atPath: dir + "/idVendor") {
                identity.manufacturer = read(dir + "/manufacturer")
                identity.model = read(dir + "/product") ?? identity.model
                identity.serial = read(dir + "/serial")
                break
            }
            dir = (dir as NSString).deletingLastPathComponent
            guard dir.hasPrefix(sysfs) else { break }
        }
        if identity.manufacturer == nil && !driver.isEmpty {
            // No USB strings: the driver is the best that is known of the maker.
            identity.manufacturer = driver
        }
        return identity
    }

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !text.isEmpty else { return nil }
        return String(text.prefix(64))
    }
}

extension DeviceIdentity {
    /// The identity of the camera that made a still (`CapturedStill.stream.device`).
    /// The synthetic camera is this project's own test pattern.
    public static func probe(_ device: String) -> DeviceIdentity {
        guard device.hasPrefix("/") else {
            return DeviceIdentity(manufacturer: "Telestation", model: "synthetic test pattern", serial: nil)
        }
        guard let h = try? V4L2Handle.open(device, viaLibv4l2: false) else { return DeviceIdentity() }
        defer { h.close() }
        guard let cap = try? DeviceDiscovery.querycap(h) else { return DeviceIdentity() }
        return of(device, card: cString(cap.card), driver: cString(cap.driver))
    }
}
