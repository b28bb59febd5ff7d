import Foundation
import Imaging

/// One frame as the source delivered it, borrowed: `bytes` is valid only
/// inside the closure given to `CameraSource.nextFrame`.
public struct CameraFrame {
    public var fourcc: FourCC
    public var width: Int
    public var height: Int
    public var bytesPerLine: Int
    public var range: YCbCrRange
    public var bytes: UnsafeRawBufferPointer
    /// Frame counter since streaming started.
    public var sequence: UInt64
    /// When the frame was captured, on the CLOCK_MONOTONIC time line, in seconds.
    public var timestamp: Double
}

/// What the device actually granted, which may differ from what was asked.
public struct StreamFormat: Sendable, Equatable, Codable {
    public var device: String
    public var card: String
    public var requested: FormatChoice
    public var fourcc: FourCC
    public var width: Int
    public var height: Int
    public var bytesPerLine: Int
    /// Quantisation of raw YCbCr frames, as the driver reports it.
    public var range: YCbCrRange
    public var bufferCount: Int
    /// `[camera.controls]` entries and whether the device took them.
    public var controls: [ControlResult]

    public var rejectedControls: [ControlResult] { controls.filter { !$0.applied } }
}

/// A camera the capture engine can stream from. All methods block and are
/// called from the engine's own thread only, so sources need not be Sendable.
public protocol CameraSource: AnyObject {
    /// Opens the device, negotiates the format, applies controls and starts streaming.
    func open() throws(CaptureError) -> StreamFormat
    /// Waits up to `timeout` seconds for the next good frame and hands it to `body`.
    func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError)
    /// Stops streaming and releases the device; safe to call more than once.
    func close()
    /// The open device's user controls with their current values.
    func controls() throws(CaptureError) -> [ControlInfo]
    /// Sets one control on the open device and returns it as the device now
    /// reports it (the driver may round the value).
    func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo
    /// Frames lost so far, over every stream this source opened.
    var frameLoss: FrameLoss { get }
}

extension CameraSource {
    /// Sources that cannot tell (the synthetic camera loses nothing).
    public var frameLoss: FrameLoss { FrameLoss() }
    public func controls() throws(CaptureError) -> [ControlInfo] { [] }
    public func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo {
        throw CaptureError(.controlUnsupported, "this camera source has no controls")
    }
}

/// Monotonic clock in seconds, the time line V4L2 timestamps use.
public func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
