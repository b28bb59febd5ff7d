import Config
import Sneakernet
import Foundation
import TOMLKit

/// One configuration key: its documentation, its example line and the code
/// that validates a TOML value and stores it. Adding a key is adding one
/// entry to `ConfigSchema.keys`; the loader, the unknown-key check and the
/// example file (`telestation config --example`) all follow from it.
public struct ConfigKey {
    public let path: String
    public let doc: String
    /// The value shown in the example config, as TOML.
    public let example: String
    /// Shown commented out in the example (an optional key).
    public let optional: Bool
    public let required: Bool
    /// Validates and stores the value; throws a message naming the bad
    /// value and what is expected.
    let apply: (TOMLValueConvertible, inout StationConfig) throws(KeyProblem) -> Void

    var section: String { String(path.split(separator: ".")[0]) }
    var name: String { path.split(separator: ".").dropFirst().joined(separator: ".") }
}

struct KeyProblem: Error {
    var message: String
    var fix: String?
}

public enum ConfigSchema {
    public static let sections = ["station", "hub", "camera", "uplink", "kiosk", "spool", "trigger", "dicom", "health"]

    public static var keys: [ConfigKey] {
        [
            text("station.id", "Station identifier, as enrolled at the hub (letters, digits, '.', '_', '-').",
                 example: "\"ps-ejemplo-01\"", required: true) { v, c throws(KeyProblem) in
                guard v.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
                    throw KeyProblem(message: "\"\(v)\" is not a valid station id",
                                     fix: "use 1-64 letters, digits, '.', '_' or '-'")
                }
                c.station.id = v
            },
            ConfigKey(path: "station.mains_frequency",
                      doc: "Mains frequency where the station stands, in Hz: 60 in Peru (220 V, 60 Hz), 50 in most of the world. Cameras with an anti-flicker control (power_line_frequency) follow it unless [camera.controls] or the camera's profile sets that control.",
                      example: "60", optional: true, required: false) { v, c throws(KeyProblem) in
                guard let hz = v.int else { throw wrongType(v, "a whole number") }
                guard hz == 50 || hz == 60 else {
                    throw KeyProblem(message: "\(hz) Hz is not a mains frequency", fix: "use 60 (Peru and the Americas) or 50")
                }
                c.station.mainsFrequency = hz
            },
            text("station.state_dir", "Where the queue database and spooled images live.",
                 example: "\"/var/lib/telestation\"", optional: true) { v, c throws(KeyProblem) in
                try absolutePath(v); c.station.stateDir = v
            },
            text("hub.url", "tus creation endpoint of the network hub; without it uploads stay off.",
                 example: "\"https://hub.example.org/files/\"") { v, c throws(KeyProblem) in
                guard let u = URLComponents(string: v), let scheme = u.scheme?.lowercased(),
                      scheme == "http" || scheme == "https", let host = u.host, !host.isEmpty else {
                    throw KeyProblem(message: "\"\(v)\" is not an http(s) URL",
                                     fix: "use e.g. \"https://hub.example.org/files/\"")
                }
                c.hub.url = v
            },
            readableFile("hub.token_file", "File holding the bearer token the hub issued to this station (mode 0600).",
                         example: "\"/etc/telestation/token\"") { c, v in c.hub.tokenFile = v },
            readableFile("hub.ca_file", "PEM bundle of a private CA that signs the hub's certificate.",
                         example: "\"/etc/telestation/hub-ca.pem\"") { c, v in c.hub.caFile = v },
            readableFile("hub.client_cert", "PEM client certificate for mutual TLS, if the hub requires it.",
                         example: "\"/etc/telestation/client.pem\"") { c, v in c.hub.clientCert = v },
            readableFile("hub.client_key", "PEM private key of client_cert (mode 0600).",
                         example: "\"/etc/telestation/client.key\"") { c, v in c.hub.clientKey = v },
            ConfigKey(path: "hub.pin_sha256",
                      doc: "Pins the hub's certificate key: base64 SHA-256 of its public key (SPKI), one or a list (the next key before a renewal). See README §Certificate pinning.",
                      example: "[\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]", optional: true,
                      required: false) { v, c throws(KeyProblem) in
                var texts: [String] = []
                if let s = v.string {
                    texts = [s]
                } else if let list = v.array {
                    for element in list {
                        guard let s = element.string else { throw wrongType(element, "base64 strings in quotes") }
                        texts.append(s)
                    }
                } else {
                    throw wrongType(v, "a base64 string or a list of them")
                }
                guard !texts.isEmpty else {
                    throw KeyProblem(message: "the list is empty", fix: "give at least one pin, or remove the key")
                }
                c.hub.pinSHA256 = try texts.map { s throws(KeyProblem) in try PinSHA256.normalize(s) }
            },

            text("camera.device", "\"auto\" (first capture device), \"synthetic\" (test pattern), or a /dev/video* or /dev/v4l/by-id/... path.",
                 example: "\"auto\"") { v, c throws(KeyProblem) in
                guard v == "auto" || v == "synthetic" || v.hasPrefix("/dev/") else {
                    throw KeyProblem(message: "\"\(v)\" is not a camera device",
                                     fix: "use \"auto\", \"synthetic\" or a path such as \"/dev/video0\"")
                }
                c.camera.device = v
            },
            int("camera.width", "Capture width in pixels; leave out for the largest the camera offers.",
                example: "1920", optional: true, range: 160...10000) { c, v in c.camera.width = v },
            int("camera.height", "Capture height in pixels; leave out for the largest the camera offers.",
                example: "1080", optional: true, range: 120...10000) { c, v in c.camera.height = v },
            choice("camera.format", "\"auto\" prefers the camera's own MJPEG, then raw YUYV/NV12/YU12; or force \"mjpeg\" / \"yuyv\".",
                   example: "\"auto\"", StationConfig.PixelFormatChoice.self) { c, v in c.camera.format = v },
            int("camera.warmup_frames", "Frames discarded before a still so auto-exposure and white balance settle.",
                example: "10", range: 0...300) { c, v in c.camera.warmupFrames = v },
            int("camera.jpeg_quality", "JPEG quality (1-100) for frames the station encodes itself.",
                example: "92", range: 1...100) { c, v in c.camera.jpegQuality = v },
            int("camera.preview_width", "Width of the small preview sent first for triage.",
                example: "480", range: 64...1920) { c, v in c.camera.previewWidth = v },
            choice("camera.image_type",
                   "What this camera's images are filed as when [dicom] is enabled: \"dermoscopic\" (Dermoscopic Photography, DMS) or \"clinical\" (VL Photographic, XC). Dermatoscope profiles say dermoscopic.",
                   example: "\"clinical\"", StationConfig.ImageType.self) { c, v in c.camera.imageType = v },
            bool("camera.polarized", "Dermoscopy: whether the light is cross-polarised (recorded in the DICOM object); usually set by the device profile.",
                 example: "true", optional: true) { c, v in c.camera.polarized = v },
            bool("camera.contact", "Dermoscopy: whether the lens touches the skin (recorded in the DICOM object); usually set by the device profile.",
                 example: "true", optional: true) { c, v in c.camera.contact = v },
            ConfigKey(path: "camera.controls",
                      doc: "V4L2 controls to set when the camera opens, by the names v4l2-ctl prints (a table).",
                      example: "{ power_line_frequency = 2, focus_automatic_continuous = 0 }", optional: true,
                      required: false) { v, c throws(KeyProblem) in
                guard let table = v.table else {
                    throw KeyProblem(message: "expected a table of control = integer", fix: "write [camera.controls] then e.g. power_line_frequency = 2")
                }
                for (name, value) in table {
                    if let i = value.int { c.camera.controls[name] = i }
                    else if let b = value.bool { c.camera.controls[name] = b ? 1 : 0 }
                    else {
                        throw KeyProblem(message: "control \(name) = \(value.tomlValue.debugDescription) is not an integer or boolean",
                                         fix: "give the control's numeric value, e.g. \(name) = 1")
                    }
                }
            },

            rate("uplink.max_rate", "Upload bandwidth cap (\"64kbit\", \"16KiB/s\", \"unlimited\").",
                 example: "\"unlimited\"") { c, v in c.uplink.maxRate = v },
            size("uplink.min_chunk", "Smallest upload chunk.", example: "\"16KiB\"", range: 1024...(64 << 20)) { c, v in c.uplink.minChunk = v },
            size("uplink.max_chunk", "Largest upload chunk.", example: "\"8MiB\"", range: 1024...(1 << 30)) { c, v in c.uplink.maxChunk = v },
            duration("uplink.target_chunk_time", "Chunks grow while they finish well under this time.",
                     example: "\"10s\"", range: 1...600) { c, v in c.uplink.targetChunkTime = v },
            duration("uplink.stall_timeout", "A transfer making no progress this long is aborted and resumed.",
                     example: "\"60s\"", range: 5...3600) { c, v in c.uplink.stallTimeout = v },
            duration("uplink.backoff_max", "Longest wait between retries.", example: "\"10m\"", range: 1...86400) { c, v in c.uplink.backoffMax = v },
            bool("uplink.recompress", "Send each JPEG as JPEG XL (lossless, about a fifth fewer bytes) to a hub that rebuilds the original; plain tus servers get the file as it is.",
                 example: "true") { c, v in c.uplink.recompress = v },
            text("uplink.hub_keys", "The hub's public keys for USB-stick bundles, as `telestation-hub keys` prints them; without it the station learns them from the hub the first time it reaches it.",
                 example: "\"hpke=BASE64, sign=BASE64\"", optional: true) { v, c throws(KeyProblem) in
                guard case .success = HubPublicKeys.parse(v) else {
                    throw KeyProblem(message: "\"\(v.prefix(60))\" is not the hub's keys", fix: "copy the line `telestation-hub keys --store DIR` prints at the hub")
                }
                c.uplink.hubKeys = v
            },

            text("kiosk.listen", "Address of the kiosk page and control API; keep it on loopback.",
                 example: "\"127.0.0.1:8080\"") { v, c throws(KeyProblem) in
                guard HostPort.split(v) != nil else {
                    throw KeyProblem(message: "\"\(v)\" is not HOST:PORT", fix: "use e.g. \"127.0.0.1:8080\"")
                }
                c.kiosk.listen = v
            },
            readableFile("kiosk.token_file",
                         "File holding the access token the control API requires from other hosts (mode 0600); needed when kiosk.listen is not on loopback.",
                         example: "\"/etc/telestation/kiosk-token\"") { c, v in c.kiosk.tokenFile = v },
            choice("kiosk.language", "Language of the kiosk page: \"es\" or \"en\".", example: "\"es\"",
                   StationConfig.Language.self) { c, v in c.kiosk.language = v },
            text("kiosk.case_id_pattern",
                 "Regular expression every case id must match (after removing spaces and upper-casing); unset accepts a DNI, a historia clínica number or a carné de extranjería.",
                 example: "\"^HC-\\\\d{6}$\"", optional: true) { v, c throws(KeyProblem) in
                guard (try? NSRegularExpression(pattern: v)) != nil else {
                    throw KeyProblem(message: "\"\(v)\" is not a valid regular expression", fix: "check its brackets and escapes (ICU syntax)")
                }
                c.kiosk.caseIdPattern = v
            },

            duration("spool.keep_uploaded", "How long uploaded images stay on the station before deletion.",
                     example: "\"7d\"", range: 0...(366 * 86400)) { c, v in c.spool.keepUploaded = v },
            size("spool.min_free", "Captures are refused when they would leave less free disk than this.",
                 example: "\"200MiB\"", range: 0...(1 << 40)) { c, v in c.spool.minFree = v },
            text("spool.key_file", "Key (32 bytes, mode 0600) that encrypts spooled images; under systemd the daemon gets it from LoadCredential= instead.",
                 example: "\"/etc/telestation/spool.key\"", optional: true) { v, c throws(KeyProblem) in
                try absolutePath(v); c.spool.keyFile = v
            },
            ConfigKey(path: "spool.insecure_allow_plaintext",
                      doc: "INSECURE, development only: without a spool key, store patient images unencrypted instead of refusing them.",
                      example: "false", optional: false, required: false) { v, c throws(KeyProblem) in
                guard let b = v.bool else { throw wrongType(v, "true or false") }
                c.spool.insecureAllowPlaintext = b
            },
        ] + triggerKeys + dicomKeys + healthKeys
    }

    /// `[dicom]`: images as DICOM objects (README "DICOM objects").
    static var dicomKeys: [ConfigKey] {
        [
            bool("dicom.enabled", "Send each image as a DICOM object (Dermoscopic or VL Photographic) instead of a JPEG file; off suits hubs that want files.",
                 example: "false") { c, v in c.dicom.enabled = v },
            text("dicom.institution", "Institution Name written into every object, e.g. the health network.",
                 example: "\"Red de Salud Ejemplo\"", optional: true) { v, c throws(KeyProblem) in
                guard v.utf8.count <= 64, !v.contains("\\"), !v.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                    throw KeyProblem(message: "\"\(v)\" is not a DICOM institution name", fix: "use at most 64 bytes, without backslashes or control characters")
                }
                c.dicom.institution = v
            },
            text("dicom.station_name", "Station Name written into every object (at most 16 characters); unset: the station id.",
                 example: "\"PS Ejemplo\"", optional: true) { v, c throws(KeyProblem) in
                guard !v.isEmpty, v.utf8.count <= 16, !v.contains("\\"), !v.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                    throw KeyProblem(message: "\"\(v)\" is not a DICOM station name (1-16 bytes, no backslash or control characters)",
                                     fix: "use a short name such as \"PS Ccatca\"")
                }
                c.dicom.stationName = v
            },
        ]
    }

    /// `[health]`: health reports to the hub (README "Fleet health").
    static var healthKeys: [ConfigKey] {
        [
            unit("health.interval", "How often the station queues a health report for the hub (queue, disk, clock, camera, power); \"0\" sends none. Reports travel like images, so an outage delays them rather than losing them; at most 96 wait.",
                 example: "\"15m\"", what: "a duration such as \"15m\" or \"1h\", or \"0\" for no reports",
                 parse: { $0.trimmingCharacters(in: .whitespaces) == "0" ? 0 : Units.parseDuration($0) }) { c, v throws(KeyProblem) in
                guard v == 0 || (1...(7 * 86400)).contains(v) else {
                    throw KeyProblem(message: "\(Units.formatDuration(v)) is out of range",
                                     fix: "use \"0\" (no reports) or a duration from 1s to 7d; 15m suits most networks")
                }
                c.health.interval = v
            },
        ]
    }

    // MARK: key builders

    static func text(_ path: String, _ doc: String, example: String, optional: Bool = false, required: Bool = false,
                     _ store: @escaping (String, inout StationConfig) throws(KeyProblem) -> Void) -> ConfigKey {
        ConfigKey(path: path, doc: doc, example: example, optional: optional, required: required) { v, c throws(KeyProblem) in
            guard let s = v.string else { throw wrongType(v, "a string in quotes") }
            try store(s, &c)
        }
    }

    static func bool(_ path: String, _ doc: String, example: String, optional: Bool = false,
                     _ store: @escaping (inout StationConfig, Bool) -> Void) -> ConfigKey {
        ConfigKey(path: path, doc: doc, example: example, optional: optional, required: false) { v, c throws(KeyProblem) in
            guard let b = v.bool else { throw wrongType(v, "true or false") }
            store(&c, b)
        }
    }

    static func readableFile(_ path: String, _ doc: String, example: String,
                             _ store: @escaping (inout StationConfig, String) -> Void) -> ConfigKey {
        text(path, doc, example: example, optional: true) { v, c throws(KeyProblem) in
            try absolutePath(v)
            guard FileManager.default.isReadableFile(atPath: v) else {
                let exists = FileManager.default.fileExists(atPath: v)
                throw KeyProblem(message: exists ? "\(v) is not readable by this user" : "\(v) does not exist",
                                 fix: exists ? "fix its owner or mode (it should be readable by the telestation user only)"
                                             : "create it, or remove the key")
            }
            store(&c, v)
        }
    }

    static func int(_ path: String, _ doc: String, example: String, optional: Bool = false, range: ClosedRange<Int>,
                    _ store: @escaping (inout StationConfig, Int) -> Void) -> ConfigKey {
        ConfigKey(path: path, doc: doc, example: example, optional: optional, required: false) { v, c throws(KeyProblem) in
            guard let i = v.int else { throw wrongType(v, "a whole number") }
            guard range.contains(i) else {
                throw KeyProblem(message: "\(i) is out of range", fix: "use a number from \(range.lowerBound) to \(range.upperBound)")
            }
            store(&c, i)
        }
    }

    static func choice<E: RawRepresentable & CaseIterable>(_ path: String, _ doc: String, example: String, _: E.Type,
                                                           _ store: @escaping (inout StationConfig, E) -> Void) -> ConfigKey
    where E.RawValue == String {
        let options = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        return text(path, doc, example: example) { v, c throws(KeyProblem) in
            guard let e = E(rawValue: v) else { throw KeyProblem(message: "\"\(v)\" is not one of \(options)", fix: "use one of \(options)") }
            store(&c, e)
        }
    }

    static func size(_ path: String, _ doc: String, example: String, range: ClosedRange<Int64>,
                     _ store: @escaping (inout StationConfig, Int64) -> Void) -> ConfigKey {
        unit(path, doc, example: example, what: "a size such as \"64KiB\" or \"4MiB\"", parse: Units.parseSize) { c, v throws(KeyProblem) in
            guard range.contains(v) else {
                throw KeyProblem(message: "\(Units.formatBytes(v)) is out of range",
                                 fix: "use a size from \(Units.formatBytes(range.lowerBound)) to \(Units.formatBytes(range.upperBound))")
            }
            store(&c, v)
        }
    }

    static func duration(_ path: String, _ doc: String, example: String, range: ClosedRange<Double>,
                         _ store: @escaping (inout StationConfig, Double) -> Void) -> ConfigKey {
        unit(path, doc, example: example, what: "a duration such as \"30s\", \"5m\" or \"7d\"", parse: Units.parseDuration) { c, v throws(KeyProblem) in
            guard range.contains(v) else {
                throw KeyProblem(message: "\(Units.formatDuration(v)) is out of range",
                                 fix: "use a duration from \(Units.formatDuration(range.lowerBound)) to \(Units.formatDuration(range.upperBound))")
            }
            store(&c, v)
        }
    }

    static func rate(_ path: String, _ doc: String, example: String,
                     _ store: @escaping (inout StationConfig, Int64) -> Void) -> ConfigKey {
        unit(path, doc, example: example, what: "a rate such as \"64kbit\", \"16KiB/s\" or \"unlimited\"", parse: Units.parseRate) { c, v throws(KeyProblem) in
            store(&c, v)
        }
    }

    static func unit<T>(_ path: String, _ doc: String, example: String, what: String, parse: @escaping (String) -> T?,
                        _ store: @escaping (inout StationConfig, T) throws(KeyProblem) -> Void) -> ConfigKey {
        ConfigKey(path: path, doc: doc, example: example, optional: false, required: false) { v, c throws(KeyProblem) in
            let text: String
            if let s = v.string { text = s } else if let i = v.int, i == 0 { text = "0" } else { throw wrongType(v, what) }
            guard let parsed = parse(text) else { throw KeyProblem(message: "\"\(text)\" is not \(what)", fix: "write it as \(what)") }
            try store(&c, parsed)
        }
    }

    static func wrongType(_ v: TOMLValueConvertible, _ expected: String) -> KeyProblem {
        KeyProblem(message: "\(v.tomlValue.debugDescription) has the wrong type", fix: "expected \(expected)")
    }

    static func absolutePath(_ v: String) throws(KeyProblem) {
        guard v.hasPrefix("/") else { throw KeyProblem(message: "\"\(v)\" is not an absolute path", fix: "start it with /") }
    }

}
