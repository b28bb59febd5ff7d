import Config
import Foundation
import TOMLKit

extension CameraProfile {
    /// Loads every `*.toml` in `directory`; a broken profile is an error
    /// naming its file, as a broken configuration is.
    public static func loadAll(directory: String) throws(ConfigError) -> [CameraProfile] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
        var out: [CameraProfile] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(file: path, message: "profile is not readable", nextStep: "check its mode")
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
                        throw ConfigError(file: file, key: path, message: "\"\(u)\" is not a USB vendor:product id", nextStep: "write it as \"046d:0825\"")
                    }
                case "match.card_contains": profile.cardContains = try strings(v, path)
                case "match.drivers": profile.drivers = try strings(v, path)
                default:
                    guard section == "camera", let k = cameraKeys[path], path != "camera.device" else {
                        throw ConfigError(file: file, line: StationConfig.locate(path, in: text), key: path, message: "unknown key in a camera profile",
                                          nextStep: "profiles take [profile] name/description/quirks, [match] usb_ids/card_contains/drivers and [camera] keys other than device")
                    }
                    var c = StationConfig()
                    c.camera = profile.camera
                    do { try k.apply(v, &c) } catch {
                        throw ConfigError(file: file, line: StationConfig.locate(path, in: text), key: path, message: error.message, nextStep: error.fix)
                    }
                    profile.camera = c.camera
                    profile.setKeys.insert(path)
                }
            }
        }
        if profile.usbIDs.isEmpty && profile.cardContains.isEmpty && profile.drivers.isEmpty {
            throw ConfigError(file: file, key: "match", message: "the profile matches no device", nextStep: "give [match] usb_ids, card_contains or drivers")
        }
        return profile
    }
}
