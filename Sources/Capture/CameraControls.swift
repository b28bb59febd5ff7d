import Foundation

extension CaptureError {
    /// A failed control request (VIDIOC_S_CTRL, VIDIOC_QUERYCAP), by errno.
    static func control(errno e: Int32, control: String, value: Int64, device: String) -> CaptureError {
        switch e {
        case ENODEV, EIO, ENXIO:
            return CaptureError(.unplugged, "camera \(device) was disconnected (\(CaptureError.errnoText(e)))",
                                nextStep: "check the camera's cable; it reopens by itself when it is back")
        case EACCES, EPERM:
            return CaptureError(.controlReadOnly, "the camera does not let \(control) be changed now (\(CaptureError.errnoText(e)))",
                                nextStep: "turn the matching automatic mode off first")
        case EINVAL, ERANGE:
            return CaptureError(.controlOutOfRange, "the camera refused \(control) = \(value) (\(CaptureError.errnoText(e)))",
                                nextStep: "pick a value from the range or menu the camera lists")
        case EBUSY:
            return CaptureError(.driverError, "the camera cannot change \(control) while it streams (\(CaptureError.errnoText(e)))",
                                nextStep: "set it under [camera.controls] in the configuration and restart the service")
        default:
            return CaptureError(.driverError, "the camera refused \(control) = \(value): \(CaptureError.errnoText(e))")
        }
    }
}

/// Decides whether a control may be set to a value, from the controls the
/// camera lists. Pure, so every rule has its own unit test; the sources call
/// it before touching the device.
public enum ControlRequestCheck {
    /// Manual controls and the automatic mode that makes them inactive while on,
    /// by the names v4l2-ctl prints (current names, then the older spellings).
    public static let automaticPartner: [String: String] = [
        "exposure_time_absolute": "auto_exposure", "exposure_absolute": "auto_exposure",
        "focus_absolute": "focus_automatic_continuous", "focus_relative": "focus_automatic_continuous",
        "white_balance_temperature": "white_balance_automatic",
        "red_balance": "white_balance_automatic", "blue_balance": "white_balance_automatic",
        "gain": "gain_automatic", "hue": "hue_automatic",
    ]
    /// Older drivers' names for the same automatic modes.
    static let olderAutomaticNames: [String: String] = [
        "focus_automatic_continuous": "focus_auto", "white_balance_automatic": "white_balance_temperature_auto",
        "gain_automatic": "autogain", "hue_automatic": "hue_auto",
    ]
    /// Control types whose value the station reads and sets as one integer.
    public static let settableTypes: Set<String> = ["int", "bool", "menu", "intmenu", "bitmask"]

    /// The control to set, or why it cannot be set to `value`.
    public static func check(_ name: String, value: Int64, in controls: [ControlInfo]) -> Result<ControlInfo, CaptureError> {
        guard let c = controls.first(where: { $0.name == name }) else {
            return .failure(CaptureError(.controlUnknown, "the camera has no control named \(name)",
                                         nextStep: "use one the camera lists (`telestation devices`)"))
        }
        guard settableTypes.contains(c.type) else {
            return .failure(CaptureError(.controlUnsupported, "\(name) is a \(c.type) control, which the station does not set"))
        }
        if c.flags.contains("read-only") {
            return .failure(CaptureError(.controlReadOnly, "\(name) is read-only on this camera"))
        }
        if c.flags.contains("inactive") {
            if let auto = automaticControl(for: name, in: controls) {
                return .failure(CaptureError(.controlInactive, "\(name) has no effect while \(auto.name) is on",
                                             nextStep: "turn \(auto.name) off first"))
            }
            return .failure(CaptureError(.controlInactive, "\(name) is inactive on this camera right now",
                                         nextStep: "another setting of the camera (usually an automatic mode) overrides it"))
        }
        guard (c.minimum...max(c.minimum, c.maximum)).contains(value) else {
            return .failure(CaptureError(.controlOutOfRange, "\(name) must be between \(c.minimum) and \(c.maximum), not \(value)"))
        }
        if c.type == "menu" || c.type == "intmenu" {
            let indexes = menuIndexes(c)
            guard indexes.contains(value) else {
                return .failure(CaptureError(.controlOutOfRange, "\(value) is not one of \(name)'s entries (\(c.menu.joined(separator: ", ")))"))
            }
        }
        return .success(c)
    }

    /// The automatic mode that overrides `name`, when the camera has one.
    public static func automaticControl(for name: String, in controls: [ControlInfo]) -> ControlInfo? {
        guard let auto = automaticPartner[name] else { return nil }
        return controls.first { $0.name == auto } ?? olderAutomaticNames[auto].flatMap { old in controls.first { $0.name == old } }
    }

    /// The indexes of a menu control's entries ("1: Manual Mode" → 1).
    public static func menuIndexes(_ c: ControlInfo) -> [Int64] {
        c.menu.compactMap { entry in entry.split(separator: ":", maxSplits: 1).first.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } }
    }
}
