import Foundation

/// Settings for a family of cameras (`hardware/profiles/*.toml`): how to
/// recognise it and the camera keys that suit it. The station's own
/// configuration overrides any key a profile sets.
public struct CameraProfile: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var quirks: [String]
    /// `vvvv:pppp` USB vendor:product ids, lower-case hex.
    public var usbIDs: [String]
    /// Substrings of the V4L2 card name (case-insensitive).
    public var cardContains: [String]
    /// V4L2 driver names (`uvcvideo`, `bcm2835-v4l2`).
    public var drivers: [String]
    /// The camera keys this profile sets, as a configuration would.
    public var camera: StationConfig.Camera
    public var setKeys: Set<String>

    public init(id: String, name: String, description: String, quirks: [String], usbIDs: [String], cardContains: [String],
                drivers: [String], camera: StationConfig.Camera, setKeys: Set<String>) {
        self.id = id
        self.name = name
        self.description = description
        self.quirks = quirks
        self.usbIDs = usbIDs
        self.cardContains = cardContains
        self.drivers = drivers
        self.camera = camera
        self.setKeys = setKeys
    }

    /// Where installed profiles live.
    public static let installedDirectory = "/usr/share/telestation/profiles"
    /// The profiles in use: `TELESTATION_PROFILES` (a source tree's
    /// hardware/profiles, a test's own) or the installed ones.
    public static var directory: String {
        ProcessInfo.processInfo.environment["TELESTATION_PROFILES"] ?? installedDirectory
    }

    /// What identifies a device for matching.
    public struct DeviceIdentity: Sendable {
        public var usbID: String?
        public var card: String
        public var driver: String
        public init(usbID: String?, card: String, driver: String) {
            self.usbID = usbID?.lowercased()
            self.card = card
            self.driver = driver
        }
    }

    /// How specific a match is: a USB id beats a card name beats a driver.
    public func matchScore(_ device: DeviceIdentity) -> Int {
        if let id = device.usbID, usbIDs.contains(id) { return 3 }
        let card = device.card.lowercased()
        if cardContains.contains(where: { card.contains($0.lowercased()) }) { return 2 }
        if drivers.contains(device.driver) { return 1 }
        return 0
    }

    /// The best-matching profile for a device, if any matches.
    public static func match(_ device: DeviceIdentity, in profiles: [CameraProfile]) -> CameraProfile? {
        profiles.map { ($0, $0.matchScore(device)) }.filter { $0.1 > 0 }.max { $0.1 < $1.1 }?.0
    }

}

extension StationConfig {
    /// The camera settings in force for a device: the profile's values for
    /// keys the configuration left out, the configuration's for the rest.
    public func camera(with profile: CameraProfile?) -> Camera {
        var merged = camera
        // The anti-flicker control follows the station's mains unless the
        // configuration or the profile sets it: V4L2's menu is 1 = 50 Hz, 2 = 60 Hz.
        let mains = station.mainsFrequency == 50 ? 1 : 2
        if camera.controls[Self.powerLineControl] == nil && profile?.camera.controls[Self.powerLineControl] == nil {
            merged.controlsIfPresent[Self.powerLineControl] = mains
        }
        guard let profile else { return merged }
        func take(_ key: String, _ apply: (inout Camera) -> Void) {
            if profile.setKeys.contains(key) && !explicitKeys.contains(key) { apply(&merged) }
        }
        take("camera.width") { $0.width = profile.camera.width }
        take("camera.height") { $0.height = profile.camera.height }
        take("camera.format") { $0.format = profile.camera.format }
        take("camera.warmup_frames") { $0.warmupFrames = profile.camera.warmupFrames }
        take("camera.jpeg_quality") { $0.jpegQuality = profile.camera.jpegQuality }
        take("camera.preview_width") { $0.previewWidth = profile.camera.previewWidth }
        take("camera.image_type") { $0.imageType = profile.camera.imageType }
        take("camera.polarized") { $0.polarized = profile.camera.polarized }
        take("camera.contact") { $0.contact = profile.camera.contact }
        // Controls merge per control: the configuration wins where both set one.
        merged.controls = profile.camera.controls.merging(camera.controls) { _, mine in mine }
        return merged
    }

    static let powerLineControl = "power_line_frequency"
}
