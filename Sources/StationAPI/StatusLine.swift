import Config

/// The station's state in one line, for `STATUS=`, `telestation status` and
/// the kiosk's header, e.g. `3 pending (4.1 MB), uploading at 11 KB/s, camera ok`.
/// Problems a person must act on come first so they survive truncation.
public struct StatusLine: Sendable, Equatable, CustomStringConvertible {
    public enum Camera: String, Sendable, Codable, Equatable {
        case ok, missing, failed, starting
    }

    public enum Link: Sendable, Equatable {
        case idle
        case uploading(bytesPerSecond: Double)
        case offline
        case paused
        /// No hub configured: images stay on the station.
        case disabled
    }

    public var pendingCount: Int
    public var pendingBytes: Int64
    public var link: Link
    public var camera: Camera
    public var hubRejectedToken: Bool
    public var diskNearlyFull: Bool
    /// The queue could not be read (or the upload's state could not be
    /// written to it): nothing about it may be taken for "empty".
    public var queueFault: Bool

    public init(pendingCount: Int = 0, pendingBytes: Int64 = 0, link: Link = .idle, camera: Camera = .ok,
                hubRejectedToken: Bool = false, diskNearlyFull: Bool = false, queueFault: Bool = false) {
        self.pendingCount = pendingCount
        self.pendingBytes = pendingBytes
        self.link = link
        self.camera = camera
        self.hubRejectedToken = hubRejectedToken
        self.diskNearlyFull = diskNearlyFull
        self.queueFault = queueFault
    }

    /// The problems, most urgent first; empty when all is well.
    public var problems: [String] {
        var p: [String] = []
        if queueFault { p.append("queue error") }
        if diskNearlyFull { p.append("disk nearly full") }
        if hubRejectedToken { p.append("hub rejected token") }
        switch camera {
        case .missing: p.append("camera missing")
        case .failed: p.append("camera failed")
        case .ok, .starting: break
        }
        return p
    }

    public var description: String { render() }

    public func render() -> String {
        var parts = problems
        if !queueFault {
            parts.append(pendingCount == 0 ? "queue empty" : "\(pendingCount) pending (\(Units.formatBytes(pendingBytes)))")
        }
        switch link {
        case .idle: if pendingCount > 0 && !hubRejectedToken { parts.append("waiting to upload") }
        case .uploading(let rate): parts.append("uploading at \(Units.formatBytes(Int64(rate.rounded())))/s")
        case .offline: parts.append("offline")
        case .paused: parts.append("uploads paused")
        case .disabled: parts.append("uploads off (no hub configured)")
        }
        switch camera {
        case .ok: parts.append("camera ok")
        case .starting: parts.append("camera starting")
        case .missing, .failed: break
        }
        return parts.joined(separator: ", ")
    }
}
