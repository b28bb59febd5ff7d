import Config
import Foundation

/// Which profile matched a device, and on what.
public struct MatchedProfile: Sendable, Equatable, Codable {
    /// The profile's file name without `.toml`.
    public var id: String
    public var name: String
    /// `usb id a168:0610`, `card name "…"` or `driver uvcvideo`.
    public var matchedBy: String

    public init(id: String, name: String, matchedBy: String) {
        self.id = id
        self.name = name
        self.matchedBy = matchedBy
    }
}

extension DeviceDiscovery {
    /// The best profile for an inspected device: a USB id beats a card name beats a driver.
    public func matchProfile(_ info: DeviceInfo, in profiles: [CameraProfile], sysRoot: String = "/sys") -> MatchedProfile? {
        let identity = CameraProfile.DeviceIdentity(usbID: usbID(of: info.path, sysRoot: sysRoot), card: info.card, driver: info.driver)
        guard let profile = CameraProfile.match(identity, in: profiles) else { return nil }
        let how: String = switch profile.matchScore(identity) {
        case 3: "usb id \(identity.usbID ?? "")"
        case 2: "card name \"\(info.card)\""
        default: "driver \(info.driver)"
        }
        return MatchedProfile(id: profile.id, name: profile.name, matchedBy: how)
    }

    /// What a camera profile matches on: the USB vendor:product id from
    /// sysfs (absent for non-USB drivers such as vivid or the Pi camera),
    /// the V4L2 card name and the driver. `device` may be `auto`.
    public func identity(of device: String, sysRoot: String = "/sys") -> CameraProfile.DeviceIdentity? {
        guard device != "synthetic" else { return nil }
        guard let path = device == "auto" ? try? firstCaptureDevice() : device, let info = try? inspect(path) else { return nil }
        return CameraProfile.DeviceIdentity(usbID: usbID(of: path, sysRoot: sysRoot), card: info.card, driver: info.driver)
    }

    /// `vvvv:pppp` of the USB device a video node belongs to: sysfs places
    /// idVendor/idProduct on the device, one level above the interface the
    /// node's `device` link points to.
    public func usbID(of path: String, sysRoot: String = "/sys") -> String? {
        let name = ((path as NSString).resolvingSymlinksInPath as NSString).lastPathComponent
        var dir = ("\(sysRoot)/class/video4linux/\(name)/device" as NSString).resolvingSymlinksInPath
        for _ in 0..<3 {
            if let v = read("\(dir)/idVendor"), let p = read("\(dir)/idProduct") { return "\(v):\(p)".lowercased() }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    private func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}
