import Basics
import Foundation

public enum CaptureErrorCode: String, FailureCode {
    /// No such device node, or no capture device at all.
    case deviceMissing
    /// Another process is streaming from the device.
    case deviceBusy
    /// The node exists but is not a streaming video capture device.
    case notACaptureDevice
    /// The device disappeared while streaming (ENODEV/EIO).
    case unplugged
    /// No frame arrived within the timeout.
    case timeout
    /// The device offers no format/size we can use.
    case formatUnsupported
    /// USB bandwidth exhausted (ENOSPC on STREAMON).
    case bandwidth
    /// Permission denied opening the node.
    case permissionDenied
    /// Any other driver error (REQBUFS, QBUF, STREAMON, mmap...).
    case driverError
    /// Too many buffers in a row flagged with errors by the driver.
    case corruptFrames
    /// The frame could not be turned into a JPEG.
    case imaging
    /// The engine was stopped while waiting.
    case stopped
    /// The camera is not streaming yet (or no longer), so its controls cannot be reached.
    case notStreaming
    /// Camera controls: no control by that name; read-only; overridden by an
    /// automatic mode; value outside the range or menu; a kind the station does not set.
    case controlUnknown, controlReadOnly, controlInactive, controlOutOfRange, controlUnsupported
}

/// Every failure of the Capture module, with a message for the person at
/// the station and, where they can act, the next step.
public typealias CaptureError = Failure<CaptureErrorCode>

extension Failure where Code == CaptureErrorCode {
    /// Text for an errno value, as strerror gives it.
    public static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Maps a failed system call on a camera to the error a person can act on.
    /// Pure: `holder` names the process that holds the device, when known.
    public static func classify(function: String, errno e: Int32, device: String, holder: String? = nil) -> CaptureError {
        let what = "\(function) on \(device) failed: \(errnoText(e))"
        switch (function, e) {
        case (_, ENOENT):
            return CaptureError(.deviceMissing, "camera \(device) is not connected (\(what))",
                                nextStep: "plug the camera in, or set camera.device in the configuration (see `telestation devices`)",
                                function: function, errno: e)
        case (_, EACCES), (_, EPERM):
            return CaptureError(.permissionDenied, "no permission to use \(device) (\(what))",
                                nextStep: "add the telestation user to the video group", function: function, errno: e)
        case (_, EBUSY):
            let who = holder.map { "\($0) is using it" } ?? "another program is using it"
            return CaptureError(.deviceBusy, "camera \(device) is busy: \(who) (\(what))",
                                nextStep: holder.map { _ in "close that program (or stop its service) and capture again" }
                                    ?? "close other camera programs and capture again",
                                function: function, errno: e)
        case ("VIDIOC_STREAMON", ENOSPC):
            return CaptureError(.bandwidth, "not enough USB bandwidth to stream from \(device) (\(what))",
                                nextStep: "use camera.format = \"mjpeg\" or a smaller camera.width/height, or move the camera to its own USB port",
                                function: function, errno: e)
        case (_, ENODEV), ("VIDIOC_DQBUF", EIO), ("poll", EIO):
            return CaptureError(.unplugged, "camera \(device) was disconnected (\(what))",
                                nextStep: "check the camera's cable; capture resumes by itself when it is back",
                                function: function, errno: e)
        case ("open", ENXIO):
            return CaptureError(.deviceMissing, "camera \(device) is not connected (\(what))",
                                nextStep: "plug the camera in", function: function, errno: e)
        default:
            return CaptureError(.driverError, "the camera driver refused a request: \(what)",
                                nextStep: "unplug and replug the camera; if it keeps happening try camera.format = \"mjpeg\" or a smaller size",
                                function: function, errno: e)
        }
    }
}
