import Foundation
import TOMLKit

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

    /// Loads every `*.toml` in `directory`; a broken profile is an error
    /// naming its file, as a broken configuration is.
    public static func loadAll(directory: String) throws(ConfigError) -> [CameraProfile] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
        var out: [CameraProfile] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(file: path, message: "profile is not readable", fix: "check its mode")
            }
            out.append(try parse(String(decoding: data, as: UTF8.self), file: path))
        }
        return out
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> CameraProfile {
        try TOMLPrecheck.check(text, file: file)
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, message: "TOML syntax error: \(e.description)")
        } catch {
            throw ConfigError(file: file, message: "TOML syntax error: \(error)")
        }
        let id = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var profile = CameraProfile(id: id, name: id, description: "", quirks: [], usbIDs: [], cardContains: [], drivers: [],
                                    camera: StationConfig.Camera(), setKeys: [])
        func strings(_ v: TOMLValueConvertible, _ key: String) throws(ConfigError) -> [String] {
            guard let a = v.array else { throw ConfigError(file: file, key: key, message: "expected a list of strings") }
            var out: [String] = []
            for e in a {
                guard let s = e.string else { throw ConfigError(file: file, key: key, message: "expected a list of strings") }
                out.append(s)
            }
            return out
        }
        let cameraKeys = Dictionary(uniqueKeysWithValues: ConfigSchema.keys.filter { $0.section == "camera" }.map { ($0.path, $0) })
        for (section, value) in root {
            guard let table = value.table else { throw ConfigError(file: file, key: section, message: "expected a section") }
            for (key, v) in table {
                let path = "\(section).\(key)"
                switch path {
                case "profile.name": profile.name = v.string ?? profile.name
                case "profile.description": profile.description = v.string ?? ""
                case "profile.quirks": profile.quirks = try strings(v, path)
                case "match.usb_ids":
                    profile.usbIDs = try strings(v, path).map { $0.lowercased() }
                    for u in profile.usbIDs where u.range(of: "^[0-9a-f]{4}:[0-9a-f]{4}$", options: .regularExpression) == nil {
                        throw ConfigError(file: file, key: path, message: "\"\(u)\" is not a USB vendor:product id", fix: "write it as \"046d:0825\"")
                    }
                case "match.card_contains": profile.cardContains = try strings(v, path)
                case "match.drivers": profile.drivers = try strings(v, path)
                default:
                    guard section == "camera", let k = cameraKeys[path], path != "camera.device" else {
                        throw ConfigError(file: file, line: StationConfig.locate(path, in: text), key: path, message: "unknown key in a camera profile",
                                          fix: "profiles take [profile] name/description/quirks, [match] usb_ids/card_contains/drivers and [camera] keys other than device")
                    }
                    var c = StationConfig()
                    c.camera = profile.camera
                    do { try k.apply(v, &c) } catch {
                        throw ConfigError(file: file, line: StationConfig.locate(path, in: text), key: path, message: error.message, fix: error.fix)
                    }
                    profile.camera = c.camera
                    profile.setKeys.insert(path)
                }
            }
        }
        if profile.usbIDs.isEmpty && profile.cardContains.isEmpty && profile.drivers.isEmpty {
            throw ConfigError(file: file, key: "match", message: "the profile matches no device", fix: "give [match] usb_ids, card_contains or drivers")
        }
        return profile
    }
}

extension StationConfig {
    /// The camera settings in force for a device: the profile's values for
    /// keys the configuration left out, the configuration's for the rest.
    public func camera(with profile: CameraProfile?) -> Camera {
        guard let profile else { return camera }
        var merged = camera
        func take(_ key: String, _ apply: (inout Camera) -> Void) {
            if profile.setKeys.contains(key) && !explicitKeys.contains(key) { apply(&merged) }
        }
        take("camera.width") { $0.width = profile.camera.width }
        take("camera.height") { $0.height = profile.camera.height }
        take("camera.format") { $0.format = profile.camera.format }
        take("camera.warmup_frames") { $0.warmupFrames = profile.camera.warmupFrames }
        take("camera.jpeg_quality") { $0.jpegQuality = profile.camera.jpegQuality }
        take("camera.preview_width") { $0.previewWidth = profile.camera.previewWidth }
        // Controls merge per control: the configuration wins where both set one.
        merged.controls = profile.camera.controls.merging(camera.controls) { _, mine in mine }
        return merged
    }
}
