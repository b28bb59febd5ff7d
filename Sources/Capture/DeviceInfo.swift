/// Everything `telestation devices` reports about one capture node.
public struct DeviceInfo: Sendable, Equatable, Codable {
    public var path: String
    /// Stable `/dev/v4l/by-id/...` link to this node, when udev made one.
    public var byIdPath: String?
    public var driver: String
    public var card: String
    public var bus: String
    /// Driver version as major.minor.patch.
    public var version: String
    public var formats: [FormatInfo]
    public var controls: [ControlInfo]
    /// The camera profile (hardware/profiles) that matches this device, if any.
    public var profile: MatchedProfile?

    public init(path: String, byIdPath: String? = nil, driver: String, card: String, bus: String, version: String = "",
                formats: [FormatInfo], controls: [ControlInfo] = []) {
        self.path = path
        self.byIdPath = byIdPath
        self.driver = driver
        self.card = card
        self.bus = bus
        self.version = version
        self.formats = formats
        self.controls = controls
    }
}

public struct FormatInfo: Sendable, Equatable, Codable {
    public var fourcc: FourCC
    public var description: String
    public var compressed: Bool
    public var sizes: [FrameSize]

    public init(fourcc: FourCC, description: String = "", compressed: Bool = false, sizes: [FrameSize]) {
        self.fourcc = fourcc
        self.description = description
        self.compressed = compressed
        self.sizes = sizes
    }
}

/// A frame size as VIDIOC_ENUM_FRAMESIZES gives it: one discrete size, or a
/// stepwise/continuous range.
public struct FrameSize: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Equatable, Codable { case discrete, stepwise, continuous }
    public var kind: Kind
    /// For discrete sizes, the size; for ranges, the largest.
    public var width: Int
    public var height: Int
    public var minWidth: Int?
    public var minHeight: Int?
    public var stepWidth: Int?
    public var stepHeight: Int?
    /// Frame intervals as "1/30" (seconds per frame) for discrete sizes.
    public var intervals: [String]

    public static func discrete(_ w: Int, _ h: Int, intervals: [String] = []) -> FrameSize {
        FrameSize(kind: .discrete, width: w, height: h, intervals: intervals)
    }

    public static func range(_ kind: Kind, min: (Int, Int), max: (Int, Int), step: (Int, Int)) -> FrameSize {
        FrameSize(kind: kind, width: max.0, height: max.1, minWidth: min.0, minHeight: min.1,
                  stepWidth: step.0, stepHeight: step.1, intervals: [])
    }

    /// Whether this entry allows exactly `w`×`h`.
    public func allows(_ w: Int, _ h: Int) -> Bool {
        switch kind {
        case .discrete: return w == width && h == height
        case .stepwise, .continuous:
            let minW = minWidth ?? 1, minH = minHeight ?? 1
            guard (minW...width).contains(w), (minH...height).contains(h) else { return false }
            let sw = max(1, stepWidth ?? 1), sh = max(1, stepHeight ?? 1)
            return (w - minW) % sw == 0 && (h - minH) % sh == 0
        }
    }
}

/// One user control with its range and current value.
public struct ControlInfo: Sendable, Equatable, Codable {
    public var id: UInt32
    /// The name v4l2-ctl uses and `[camera.controls]` keys take (`power_line_frequency`).
    public var name: String
    /// The driver's own label ("Power Line Frequency").
    public var label: String
    public var type: String
    public var minimum: Int64
    public var maximum: Int64
    public var step: Int64
    public var defaultValue: Int64
    /// nil for write-only and button controls.
    public var value: Int64?
    public var flags: [String]
    /// Menu entries, "index: label".
    public var menu: [String]

    public init(id: UInt32, name: String, label: String, type: String, minimum: Int64, maximum: Int64, step: Int64,
                defaultValue: Int64, value: Int64?, flags: [String] = [], menu: [String] = []) {
        self.id = id
        self.name = name
        self.label = label
        self.type = type
        self.minimum = minimum
        self.maximum = maximum
        self.step = step
        self.defaultValue = defaultValue
        self.value = value
        self.flags = flags
        self.menu = menu
    }

    /// The v4l2-ctl spelling of a control label: lower case, runs of other
    /// characters turned into one underscore, no underscore at the ends.
    public static func variableName(_ label: String) -> String {
        var out = ""
        for ch in label.lowercased() {
            if ch.isASCII, ch.isLetter || ch.isNumber {
                out.append(ch)
            } else if !out.isEmpty, out.last != "_" {
                out.append("_")
            }
        }
        while out.last == "_" { out.removeLast() }
        return out
    }
}

/// What applying one `[camera.controls]` entry did.
public struct ControlResult: Sendable, Equatable, Codable {
    public var name: String
    public var requested: Int
    public var applied: Bool
    /// Why the device rejected it.
    public var reason: String?
}
