import Basics
import Capture
import Foundation

/// How soon a case should reach a specialist.
public enum CasePriority: String, Sendable, Codable, CaseIterable {
    case routine, urgent
}

/// A validated capture request from the kiosk, the CLI or the device button.
public struct CaptureRequest: Sendable, Codable, Equatable {
    public var caseId: String
    /// One of `BodySite` raw values.
    public var site: String
    public var note: String
    public var priority: CasePriority
    /// What this image is in the case; nil from clients that send single images.
    public var role: ImageRole?
    /// The side of the body map the site was picked on.
    public var aspect: BodyAspect?
    /// The patient as entered on the kiosk and confirmed by staff.
    public var patient: PatientEntry?
    public var history: CaseHistory?
    /// The consent text the patient agreed to (sent only once the box is ticked).
    public var consent: String?

    public init(caseId: String, site: String, note: String = "", priority: CasePriority = .routine,
                role: ImageRole? = nil, aspect: BodyAspect? = nil, patient: PatientEntry? = nil,
                history: CaseHistory? = nil, consent: String? = nil) {
        self.caseId = caseId
        self.site = site
        self.note = note
        self.priority = priority
        self.role = role
        self.aspect = aspect
        self.patient = patient
        self.history = history
        self.consent = consent
    }

    enum CodingKeys: String, CodingKey {
        case caseId = "case_id", site, note, priority, role, aspect, patient, history, consent
    }
}

/// `POST /api/v1/cases`: the images under review that make one case, in
/// the order the dermatologist sees them, and the case as it stands when
/// staff press Send (history and note may have changed since the first image).
public struct CaseSubmission: Sendable, Equatable {
    public var ids: [String]
    public var details: CaptureRequest

    public init(ids: [String], details: CaptureRequest) {
        self.ids = ids
        self.details = details
    }
}

/// What `POST /api/v1/cases` answers: the case's id, shared by its images at the hub, and the queued images.
public struct SentCase: Sendable, Codable, Equatable {
    public var caseUID: String
    public var items: [QueueItem]

    public init(caseUID: String, items: [QueueItem]) {
        self.caseUID = caseUID
        self.items = items
    }

    enum CodingKeys: String, CodingKey {
        case caseUID = "case_uid", items
    }
}

/// A warning from capture's exposure and sharpness checks, shown on the review screen.
public enum CaptureWarning: String, Sendable, Codable, CaseIterable {
    case tooDark = "too_dark"
    case tooBright = "too_bright"
    case blurry
    case lowResolution = "low_resolution"
}

/// A still waiting for the person who took it to send it or retake it.
public struct ReviewItem: Sendable, Codable, Equatable {
    public var id: String
    public var request: CaptureRequest
    public var width: Int
    public var height: Int
    public var bytes: Int64
    public var warnings: [CaptureWarning]
    public var capturedAt: Date
    /// What took it: the kiosk, the camera's button, a foot switch, a GPIO button.
    public var trigger: TriggerKind?

    public init(id: String, request: CaptureRequest, width: Int, height: Int, bytes: Int64,
                warnings: [CaptureWarning], capturedAt: Date, trigger: TriggerKind? = nil) {
        self.id = id
        self.request = request
        self.width = width
        self.height = height
        self.bytes = bytes
        self.warnings = warnings
        self.capturedAt = capturedAt
        self.trigger = trigger
    }

    enum CodingKeys: String, CodingKey {
        case id, request, width, height, bytes, warnings, capturedAt = "captured_at", trigger
    }
}

/// An item's place in the upload queue.
public enum QueueState: String, Sendable, Codable, CaseIterable {
    /// `uploaded`: sent to a hub that gives no receipts. `sent`: every byte
    /// is on the hub, which has not yet confirmed filing. `received`: filed.
    case queued, uploading, waiting, sent, uploaded, received, failed

    /// Every byte is on the hub (whether or not it has confirmed filing).
    public var isDelivered: Bool { self == .sent || self == .uploaded || self == .received }
}

/// Sent against received, per case, for the kiosk.
public struct CaseProgress: Sendable, Codable, Equatable {
    public var caseId: String
    public var images: Int
    /// Every byte on the hub (sent, uploaded or received).
    public var sent: Int
    /// Confirmed filed by the hub.
    public var received: Int
    /// The patient as last entered for this case id, for the kiosk to offer again.
    public var patient: PatientEntry?
    /// The case is received when all its images are.
    public var isReceived: Bool { images > 0 && received == images }

    enum CodingKeys: String, CodingKey {
        case caseId = "case_id", images, sent, received, patient
    }
}

public struct QueueItem: Sendable, Codable, Equatable {
    public var id: String
    public var caseId: String
    public var site: String
    public var priority: CasePriority
    public var state: QueueState
    public var bytesTotal: Int64
    public var bytesSent: Int64
    /// Seconds until uploaded at the current rate; nil when unknown (offline, paused).
    public var etaSeconds: Double?
    public var createdAt: Date
    /// Why the item is waiting or failed, for people.
    public var detail: String?
    /// The patient entered with the case, offered again for the same patient's next case.
    public var patient: PatientEntry?

    public init(id: String, caseId: String, site: String, priority: CasePriority, state: QueueState,
                bytesTotal: Int64, bytesSent: Int64, etaSeconds: Double? = nil, createdAt: Date, detail: String? = nil,
                patient: PatientEntry? = nil) {
        self.patient = patient
        self.id = id
        self.caseId = caseId
        self.site = site
        self.priority = priority
        self.state = state
        self.bytesTotal = bytesTotal
        self.bytesSent = bytesSent
        self.etaSeconds = etaSeconds
        self.createdAt = createdAt
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case id, caseId = "case_id", site, priority, state, bytesTotal = "bytes_total", bytesSent = "bytes_sent"
        case etaSeconds = "eta_seconds", createdAt = "created_at", detail, patient
    }
}

public struct QueueSnapshot: Sendable, Codable, Equatable {
    /// Pending items first (in upload order), then the recently uploaded ones.
    public var items: [QueueItem]
    public var pendingCount: Int
    public var pendingBytes: Int64
    /// The cases of `items`, in order of first appearance.
    public var cases: [CaseProgress]

    public init(items: [QueueItem]) {
        self.items = items
        let pending = items.filter { !$0.state.isDelivered }
        self.pendingCount = pending.count
        self.pendingBytes = pending.reduce(0) { $0 + max(0, $1.bytesTotal - $1.bytesSent) }
        var cases: [CaseProgress] = []
        var index: [String: Int] = [:]
        for item in items {
            let i = index[item.caseId] ?? {
                cases.append(CaseProgress(caseId: item.caseId, images: 0, sent: 0, received: 0))
                index[item.caseId] = cases.count - 1
                return cases.count - 1
            }()
            cases[i].images += 1
            if cases[i].patient == nil { cases[i].patient = item.patient }
            if item.state.isDelivered { cases[i].sent += 1 }
            if item.state == .received { cases[i].received += 1 }
        }
        self.cases = cases
    }

    enum CodingKeys: String, CodingKey {
        case items, pendingCount = "pending_count", pendingBytes = "pending_bytes", cases
    }
}

/// What staff can ask of the upload loop, e.g. to keep the link free during a live consultation.
public enum UploadControl: Sendable, Equatable {
    case pause
    case resume
    /// Bytes per second; 0 removes the limit.
    case limit(bytesPerSecond: Int64)
}

public struct LinkState: Sendable, Codable, Equatable {
    public enum Hub: String, Sendable, Codable {
        case ok, unreachable, rejectedToken = "rejected_token", notConfigured = "not_configured"
    }
    public var online: Bool
    /// Recent measured upload rate in bytes per second.
    public var rateBytesPerSecond: Double
    public var paused: Bool
    /// Current cap in bytes per second; 0 means none.
    public var limitBytesPerSecond: Int64
    public var hub: Hub
    public var uploading: Bool

    public init(online: Bool, rateBytesPerSecond: Double, paused: Bool, limitBytesPerSecond: Int64, hub: Hub, uploading: Bool) {
        self.online = online
        self.rateBytesPerSecond = rateBytesPerSecond
        self.paused = paused
        self.limitBytesPerSecond = limitBytesPerSecond
        self.hub = hub
        self.uploading = uploading
    }

    enum CodingKeys: String, CodingKey {
        case online, rateBytesPerSecond = "rate_bytes_per_second", paused, limitBytesPerSecond = "limit_bytes_per_second"
        case hub, uploading
    }
}

public struct CameraControl: Sendable, Codable, Equatable {
    /// One entry of a menu control: the value to send and the driver's label.
    public struct MenuEntry: Sendable, Codable, Equatable {
        public var value: Int
        public var label: String
        public init(value: Int, label: String) {
            self.value = value
            self.label = label
        }
    }

    /// As `v4l2-ctl` prints it, e.g. `brightness`, `focus_absolute`.
    public var name: String
    public var value: Int
    public var minimum: Int
    public var maximum: Int
    public var step: Int
    public var defaultValue: Int
    /// The driver's own label ("Power Line Frequency").
    public var label: String
    /// "int", "bool", "menu", "intmenu" or "bitmask".
    public var type: String
    /// The entries of a menu control; empty otherwise.
    public var menu: [MenuEntry]
    /// Has no effect now, usually because an automatic mode is on.
    public var inactive: Bool
    public var readOnly: Bool

    public init(name: String, value: Int, minimum: Int, maximum: Int, step: Int, defaultValue: Int,
                label: String? = nil, type: String = "int", menu: [MenuEntry] = [], inactive: Bool = false, readOnly: Bool = false) {
        self.name = name
        self.value = value
        self.minimum = minimum
        self.maximum = maximum
        self.step = step
        self.defaultValue = defaultValue
        self.label = label ?? name
        self.type = type
        self.menu = menu
        self.inactive = inactive
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey {
        case name, value, minimum, maximum, step, defaultValue = "default", label, type, menu, inactive, readOnly = "read_only"
    }
}

public struct StationHealth: Sendable, Codable, Equatable {
    public var camera: StatusLine.Camera
    public var diskNearlyFull: Bool
    public var freeBytes: Int64?
    /// The camera's most recent error, also after it recovered (a dropped
    /// or damaged buffer, an unplug), so staff and technicians see what happened.
    public var cameraError: String?
    public var cameraErrorAt: Date?
    /// Frames the camera dropped, and buffers it delivered damaged, since the
    /// daemon started: faults the engine rides out leave no error, only these.
    public var framesDropped: UInt64?
    public var framesDamaged: UInt64?
    /// The queue's last write failure on the upload path (an upload URL, an
    /// offset or a completion that could not be recorded); nil when writes work.
    public var queueError: String?

    public init(camera: StatusLine.Camera, diskNearlyFull: Bool, freeBytes: Int64? = nil,
                cameraError: String? = nil, cameraErrorAt: Date? = nil,
                framesDropped: UInt64? = nil, framesDamaged: UInt64? = nil, queueError: String? = nil) {
        self.camera = camera
        self.diskNearlyFull = diskNearlyFull
        self.freeBytes = freeBytes
        self.cameraError = cameraError
        self.cameraErrorAt = cameraErrorAt
        self.framesDropped = framesDropped
        self.framesDamaged = framesDamaged
        self.queueError = queueError
    }

    enum CodingKeys: String, CodingKey {
        case camera, diskNearlyFull = "disk_nearly_full", freeBytes = "free_bytes"
        case cameraError = "camera_error", cameraErrorAt = "camera_error_at", queueError = "queue_error"
        case framesDropped = "frames_dropped", framesDamaged = "frames_damaged"
    }
}

public enum ImageKind: String, Sendable {
    case full, preview
}

/// A USB stick the daemon sees mounted, and what exporting to it would carry
/// (`GET /api/v1/stick`; `POST /api/v1/stick/export` writes the bundle).
public struct StickStatus: Sendable, Codable, Equatable {
    /// Where the stick is mounted; nil: no stick.
    public var mountPoint: String?
    /// Images and previews the hub has not confirmed, and their bytes.
    public var owedItems: Int
    public var owedBytes: Int64
    /// Whether a bundle can be sealed (the station knows the hub's keys).
    public var canExport: Bool
    /// Why not, for the kiosk and the technician.
    public var reason: String?
    /// An export in progress: items written so far of `owedItems`.
    public var exporting: Int?
    public var lastExport: StickOperation?
    public var lastReceipts: StickOperation?

    public init(mountPoint: String? = nil, owedItems: Int = 0, owedBytes: Int64 = 0, canExport: Bool = false, reason: String? = nil,
                exporting: Int? = nil, lastExport: StickOperation? = nil, lastReceipts: StickOperation? = nil) {
        self.mountPoint = mountPoint
        self.owedItems = owedItems
        self.owedBytes = owedBytes
        self.canExport = canExport
        self.reason = reason
        self.exporting = exporting
        self.lastExport = lastExport
        self.lastReceipts = lastReceipts
    }

    enum CodingKeys: String, CodingKey {
        case reason, exporting
        case mountPoint = "mount_point", owedItems = "owed_items", owedBytes = "owed_bytes", canExport = "can_export"
        case lastExport = "last_export", lastReceipts = "last_receipts"
    }
}

/// What an export to the stick or a reading of its receipts did.
public struct StickOperation: Sendable, Codable, Equatable {
    public var at: Date
    public var ok: Bool
    /// One line for staff: "12 images written to the USB stick", or the error.
    public var message: String
    /// Items written (export) or marked received (receipts).
    public var items: Int

    public init(at: Date, ok: Bool, message: String, items: Int = 0) {
        self.at = at
        self.ok = ok
        self.message = message
        self.items = items
    }
}

/// A reply from the hub about a case, as the kiosk shows it under
/// Respuestas (`GET /api/v1/replies`).
public struct CaseReplyItem: Sendable, Codable, Equatable {
    public var id: Int
    public var caseID: String
    /// `received`, `retake` or `note`.
    public var kind: String
    public var image: Int?
    public var text: String
    public var at: Date
    public var read: Bool

    public init(id: Int, caseID: String, kind: String, image: Int?, text: String, at: Date, read: Bool) {
        self.id = id
        self.caseID = caseID
        self.kind = kind
        self.image = image
        self.text = text
        self.at = at
        self.read = read
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, image, text, at, read
        case caseID = "case_id"
    }
}

/// The replies the station holds, newest first, and how many are unread.
public struct RepliesSnapshot: Sendable, Codable, Equatable {
    public var replies: [CaseReplyItem]
    public var unread: Int

    public init(replies: [CaseReplyItem]) {
        self.replies = replies
        self.unread = replies.filter { !$0.read }.count
    }
}
