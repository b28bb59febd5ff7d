import Basics
import Foundation

/// The whole validated configuration of a station. Every field has its
/// default here and its key, documentation and validation in `ConfigSchema`.
public struct StationConfig: Sendable, Equatable {
    public struct Station: Sendable, Equatable {
        public var id: String = ""
        public var stateDir: String = "/var/lib/telestation"
        /// The mains frequency where the station stands, in Hz (50 or 60;
        /// Peru's grid is 60 Hz). Cameras with an anti-flicker control
        /// (`power_line_frequency`) follow it unless told otherwise.
        public var mainsFrequency: Int = 60
    }

    public struct Hub: Sendable, Equatable {
        /// The tus creation endpoint; nil leaves uploads switched off.
        public var url: String? = nil
        public var tokenFile: String? = nil
        public var caFile: String? = nil
        public var clientCert: String? = nil
        public var clientKey: String? = nil
        /// Base64 SHA-256 hashes of the public keys (SPKI) the hub's
        /// certificate may have; empty: no pinning.
        public var pinSHA256: [String] = []
    }

    public enum PixelFormatChoice: String, Sendable, Equatable, CaseIterable {
        case auto, mjpeg, yuyv
    }

    public struct Camera: Sendable, Equatable {
        /// `auto` (first capture device), `synthetic`, or a device path.
        public var device: String = "auto"
        /// nil: the largest size the device offers.
        public var width: Int? = nil
        public var height: Int? = nil
        public var format: PixelFormatChoice = .auto
        public var warmupFrames: Int = 10
        public var jpegQuality: Int = 92
        public var previewWidth: Int = 480
        /// V4L2 control name (as `v4l2-ctl` prints it) → value.
        public var controls: [String: Int] = [:]
        /// Controls set only when the camera has them, silently otherwise
        /// (the anti-flicker setting that follows `station.mains_frequency`).
        public var controlsIfPresent: [String: Int] = [:]
        /// What the camera's images are filed as when `dicom.enabled`; a
        /// dermatoscope's profile says `dermoscopic`.
        public var imageType: ImageType = .clinical
        /// Dermoscopy settings (from the device profile); nil: not stated.
        public var polarized: Bool? = nil
        public var contact: Bool? = nil

        public init() {}
    }

    /// The DICOM object an image becomes: Dermoscopic Photography (DMS) or VL Photographic (XC).
    public enum ImageType: String, Sendable, Equatable, CaseIterable { case dermoscopic, clinical }

    /// `[dicom]`: whether images leave as DICOM objects, and what they say about where they were made.
    public struct Dicom: Sendable, Equatable {
        /// false: images leave as JPEG files, for hubs that want files.
        public var enabled: Bool = false
        /// Institution Name (0008,0080).
        public var institution: String = ""
        /// Station Name (0008,1010); nil: the station id (cut to DICOM's 16 characters).
        public var stationName: String? = nil
    }

    public struct Uplink: Sendable, Equatable {
        /// Bytes per second; 0 means unlimited.
        public var maxRate: Int64 = 0
        public var minChunk: Int64 = 16 * 1024
        public var maxChunk: Int64 = 8 * 1024 * 1024
        /// Seconds.
        public var targetChunkTime: Double = 10
        public var stallTimeout: Double = 60
        public var backoffMax: Double = 600
        /// JPEG XL transport recompression when the hub advertises it (README "Fewer bytes on the wire").
        public var recompress: Bool = true
        /// The hub's public keys for bundles on a USB stick (`hpke=…, sign=…`);
        /// nil: learnt from the hub's OPTIONS answer.
        public var hubKeys: String?
    }

    public enum Language: String, Sendable, Equatable, CaseIterable { case es, en }

    public struct Kiosk: Sendable, Equatable {
        public var listen: String = "127.0.0.1:8080"
        /// File with the token the control API requires when it listens beyond loopback.
        public var tokenFile: String? = nil
        public var language: Language = .es
        /// Case ids must match this after spaces are dropped and letters
        /// upper-cased; nil accepts the Peruvian formats (DNI, historia clínica, CE).
        public var caseIdPattern: String? = nil
    }

    public struct SpoolSettings: Sendable, Equatable {
        /// Seconds an uploaded image is kept before its file is deleted.
        public var keepUploaded: Double = 7 * 86400
        public var minFree: Int64 = 200 * 1024 * 1024
        /// The master key of the at-rest encryption, when systemd does not pass one.
        public var keyFile: String = "/etc/telestation/spool.key"
        /// Development only: without a key, store images unencrypted instead of refusing.
        public var insecureAllowPlaintext: Bool = false
    }

    /// `[health]`: the station's own health reports to the hub (README "Fleet health").
    public struct Health: Sendable, Equatable {
        /// Seconds between two reports; 0: no reports.
        public var interval: Double = 15 * 60
    }

    public var station = Station()
    public var hub = Hub()
    public var camera = Camera()
    public var uplink = Uplink()
    public var kiosk = Kiosk()
    public var spool = SpoolSettings()
    public var trigger = Trigger()
    public var dicom = Dicom()
    public var health = Health()
    /// The keys the file set explicitly (`camera.width`, …): a camera
    /// profile fills in only what the configuration left out.
    public var explicitKeys: Set<String> = []

    public init() {}

    /// Default location, overridable by `TELESTATION_CONFIG`.
    public static var defaultPath: String {
        ProcessInfo.processInfo.environment["TELESTATION_CONFIG"] ?? "/etc/telestation/station.toml"
    }

    public var spoolDirectory: String { (station.stateDir as NSString).appendingPathComponent("spool") }
    public var databasePath: String { (station.stateDir as NSString).appendingPathComponent("queue.sqlite") }

    /// Host and port of `kiosk.listen`.
    public var listenAddress: (host: String, port: Int) {
        // Validated at load, so the split cannot fail here.
        let (h, p) = HostPort.split(kiosk.listen) ?? ("127.0.0.1", 8080)
        return (h, p)
    }

    /// Reads the bearer token named by `hub.token_file`, without its trailing newline.
    public func hubToken() throws(ConfigError) -> String? {
        try Self.token(hub.tokenFile, key: "hub.token_file", fix: "write the station's hub token into it (see README, Enrolment)")
    }

    /// The control API's access token from `kiosk.token_file`, nil when unset.
    public func kioskToken() throws(ConfigError) -> String? {
        try Self.token(kiosk.tokenFile, key: "kiosk.token_file",
                       fix: "write a long random token into it, e.g. head -c 24 /dev/urandom | base64 > FILE")
    }

    private static func token(_ path: String?, key: String, fix: String) throws(ConfigError) -> String? {
        guard let path else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, key: key, message: "cannot read the token file \(path)",
                              nextStep: "check that it exists and that the telestation user can read it")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw ConfigError(file: path, key: key, message: "the token file \(path) is empty", nextStep: fix)
        }
        return token
    }
}

/// A configuration problem: which file, which line and key, what was wrong
/// and how to fix it. Rendered on one line; the CLI exits 78 (EX_CONFIG).
public struct ConfigError: StationFailure, Equatable {
    public var file: String
    public var line: Int?
    public var key: String?
    public var message: String
    public var nextStep: String?
    /// Configuration problems are never a failed system call.
    public var cause: SystemCallError? { nil }

    public init(file: String, line: Int? = nil, key: String? = nil, message: String, nextStep: String? = nil) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.nextStep = nextStep
    }

    public static let exitCode = ExitStatus.configuration.rawValue

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ": "
        if let key { s += "\(key): " }
        s += message
        if let nextStep { s += " — \(nextStep)" }
        return s.replacingOccurrences(of: "\n", with: " ")
    }
}

/// `HOST:PORT` as `kiosk.listen` and the hub address are written; `[::1]:8080` for IPv6.
public enum HostPort {
    public static func split(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return (host, port)
    }
}
