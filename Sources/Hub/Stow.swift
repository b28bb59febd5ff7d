import Foundation

/// The DICOMweb pieces the hub's PACS forwarder speaks, as pure functions:
/// the STOW-RS request body (PS3.18 §10.5), the judgement of its response,
/// and the QIDO-RS answer that confirms the PACS holds an instance. The
/// forwarder (`PACSForwarder`) does the I/O around them.
public enum Stow {
    /// What one STOW-RS exchange means for the instance sent.
    public enum Verdict: Sendable, Equatable {
        /// The PACS lists the instance in its ReferencedSOPSequence and not in
        /// its FailedSOPSequence; `warning` carries a WarningReason, if any.
        case stored(warning: String?)
        /// The PACS answered about this instance and did not store it.
        case refused(String)
        /// The PACS, or the way to it, is not working: every upload waits.
        case unavailable(String)
    }

    /// `multipart/related; type="application/dicom"` with one part per
    /// instance: the Content-Type header value and the body.
    public static func request(instances: [[UInt8]], boundary: String) -> (contentType: String, body: [UInt8]) {
        var body: [UInt8] = []
        for instance in instances {
            body += Array("--\(boundary)\r\nContent-Type: application/dicom\r\n\r\n".utf8)
            body += instance
            body += Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return ("multipart/related; type=\"application/dicom\"; boundary=\(boundary)", body)
    }

    /// A boundary that cannot occur in the instance: random, and checked.
    public static func boundary(avoiding bytes: [UInt8]) -> String {
        while true {
            let b = "telestation-" + (0..<24).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
            if !contains(bytes, Array(b.utf8)) { return b }
        }
    }

    /// Judges the answer to a STOW-RS request that carried one instance,
    /// `sopInstanceUID`. Both the HTTP status and the body count: Orthanc,
    /// for one, answers 200 with a FailedSOPSequence for some refusals, and
    /// 400 with both sequences empty for a file it cannot parse.
    public static func judge(status: Int, body: [UInt8], sopInstanceUID: String) -> Verdict {
        switch status {
        case 200, 202:
            break
        case 400, 409, 415, 422:
            // PS3.18 §10.5.3: the request reached the PACS, which refused what it carried.
            let reason = failure(in: body, sopInstanceUID: sopInstanceUID).map { ": \($0)" } ?? ""
            return .refused("the PACS refused the instance (HTTP \(status))\(reason)")
        case 401, 403:
            return .unavailable("the PACS refused the hub's credentials (HTTP \(status)); check --stow-user and --stow-password-file")
        case 404, 405:
            return .unavailable("no STOW-RS endpoint there (HTTP \(status)); check --stow-url (the DICOMweb root, e.g. http://pacs:8042/dicom-web)")
        default:
            return .unavailable("the PACS answered HTTP \(status)")
        }
        guard let object = dicomJSON(body) else {
            return .refused("the PACS answered HTTP \(status) without a DICOM JSON body saying what it stored")
        }
        if let reason = failure(in: object, sopInstanceUID: sopInstanceUID) {
            return .refused("the PACS listed the instance in its FailedSOPSequence: \(reason)")
        }
        let referenced = items(object, "00081199")
        guard let item = referenced.first(where: { string($0, "00081155") == sopInstanceUID }) else {
            return .refused("the PACS answered HTTP \(status) but does not list the instance in its ReferencedSOPSequence")
        }
        let warning = uint(item["00081196"] as? [String: Any]) ?? uint(object["00081196"] as? [String: Any])
        return .stored(warning: warning.map { "warning reason 0x\(String($0, radix: 16, uppercase: true))" })
    }

    /// Whether a QIDO-RS answer (`GET …/instances?SOPInstanceUID=UID`) lists the instance.
    /// STOW-RS's word is not enough: Orthanc lists an instance its own
    /// ReceivedInstanceFilter dropped as stored, so the hub asks again.
    public static func holds(qido status: Int, body: [UInt8], sopInstanceUID: String) -> Bool {
        guard status == 200, let array = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else { return false }
        return array.contains { ($0 as? [String: Any]).flatMap { string($0, "00080018") } == sopInstanceUID }
    }

    /// The FailedSOPSequence item for the instance (or the only one), as
    /// "failure reason 0xC000 (cannot understand)"; nil when there is none.
    static func failure(in body: [UInt8], sopInstanceUID: String) -> String? {
        dicomJSON(body).flatMap { failure(in: $0, sopInstanceUID: sopInstanceUID) }
    }

    static func failure(in object: [String: Any], sopInstanceUID: String) -> String? {
        let failed = items(object, "00081198")
        guard !failed.isEmpty else { return nil }
        // One instance per request: an item naming no instance is still about ours.
        guard let item = failed.first(where: { string($0, "00081155") == sopInstanceUID })
                ?? failed.first(where: { string($0, "00081155") == nil }) else { return nil }
        guard let code = uint(item["00081197"] as? [String: Any]) else { return "no failure reason given" }
        let hex = "0x" + String(code, radix: 16, uppercase: true)
        return "failure reason \(hex)" + (failureReasons[code].map { " (\($0))" } ?? "")
    }

    /// PS3.4 Annex GG.4 and C.4.2.1.4: the failure reasons a STOW-RS answer may carry.
    static let failureReasons: [UInt: String] = [
        0x0110: "processing failure",
        0x0112: "no such object instance",
        0x0117: "invalid object instance",
        0x0122: "SOP class not supported",
        0x0124: "not authorized",
        0x0210: "duplicate invocation",
        0xA700: "out of resources",
        0xA770: "out of resources",
        0xA900: "data set does not match SOP class",
        0xC000: "cannot understand",
        0xC122: "referenced transfer syntax not supported",
    ]

    // MARK: DICOM JSON (PS3.18 Annex F): {"ggggeeee": {"vr": VR, "Value": [...]}}

    static func dicomJSON(_ body: [UInt8]) -> [String: Any]? {
        guard !body.isEmpty, let value = try? JSONSerialization.jsonObject(with: Data(body)) else { return nil }
        if let object = value as? [String: Any] { return object }
        // Some servers wrap the one response data set in an array.
        if let array = value as? [Any], array.count == 1 { return array[0] as? [String: Any] }
        return nil
    }

    static func items(_ object: [String: Any], _ tag: String) -> [[String: Any]] {
        ((object[tag] as? [String: Any])?["Value"] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
    }

    static func string(_ object: [String: Any], _ tag: String) -> String? {
        ((object[tag] as? [String: Any])?["Value"] as? [Any])?.first as? String
    }

    static func uint(_ attribute: [String: Any]?) -> UInt? {
        guard let value = (attribute?["Value"] as? [Any])?.first else { return nil }
        if let n = value as? Int { return UInt(exactly: n) }
        if let d = value as? Double { return UInt(exactly: d) }
        if let n = value as? NSNumber { return UInt(exactly: n.doubleValue) }
        if let s = value as? String { return UInt(s) }
        return nil
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return false }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// When the forwarder tries again: exponential backoff from `base`, capped
/// at `cap`, with "equal jitter" — the n-th consecutive failure waits a
/// uniform time in [w/2, w] with w = min(cap, base·2^(n-1)). Half the window
/// is kept so a backlog never hammers a PACS that just came back; the other
/// half spreads the retries of many uploads apart.
public struct FilingBackoff: Sendable, Equatable {
    public var base: Double
    public var cap: Double

    public init(base: Double = 2, cap: Double = 300) {
        self.base = max(0.001, base)
        self.cap = max(self.base, cap)
    }

    /// The window after `failures` consecutive failures (1 for the first).
    public func window(failures: Int) -> Double {
        min(cap, base * pow(2, Double(min(max(failures, 1) - 1, 60))))
    }

    /// - Parameter random: in [0, 1]; injectable for tests.
    public func delay(failures: Int, random: Double = Double.random(in: 0...1)) -> Double {
        let w = window(failures: failures)
        return w / 2 + w / 2 * min(max(random, 0), 1)
    }
}

/// The forwarder's decision after one attempt, from the verdict and the
/// upload's persisted count of attempts: what to record and when to try again.
public struct FilingDecision: Sendable, Equatable {
    /// The upload is filed; record `filed_at`.
    public var filed: Bool
    /// `pacs_attempts` to record.
    public var attempts: Int
    /// `pacs_last_error` to record (nil once filed).
    public var error: String?
    /// Seconds until this upload is tried again (nil once filed).
    public var retryIn: Double?
    /// Whether every upload waits (the PACS itself failed), not only this one.
    public var pacsWide: Bool

    /// - Parameters:
    ///   - attempts: attempts recorded before this one.
    ///   - pacsFailures: consecutive PACS-wide failures before this one.
    public static func after(_ verdict: Stow.Verdict, attempts: Int, pacsFailures: Int,
                             backoff: FilingBackoff, random: Double = Double.random(in: 0...1)) -> FilingDecision {
        let n = attempts + 1
        switch verdict {
        case .stored:
            return FilingDecision(filed: true, attempts: n, error: nil, retryIn: nil, pacsWide: false)
        case let .refused(reason):
            return FilingDecision(filed: false, attempts: n, error: reason,
                                  retryIn: backoff.delay(failures: n, random: random), pacsWide: false)
        case let .unavailable(reason):
            // The PACS is down for everyone: the wait follows the run of PACS
            // failures, so a backlog makes one request per window, not one each.
            return FilingDecision(filed: false, attempts: n, error: reason,
                                  retryIn: backoff.delay(failures: pacsFailures + 1, random: random), pacsWide: true)
        }
    }
}
