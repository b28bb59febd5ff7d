import Config

/// Which camera to open and how, from `[camera]` plus command-line overrides.
public struct CameraSelection: Sendable, Equatable {
    /// "auto", "synthetic" or a device path.
    public var device: String
    public var preference: FormatPreference
    public var width: Int?
    public var height: Int?
    public var controls: [String: Int]
    /// Set only when the camera has them (see `StationConfig.Camera.controlsIfPresent`).
    public var controlsIfPresent: [String: Int]
    /// Only for the synthetic camera.
    public var pattern: SyntheticCamera.Pattern = .bars

    public init(_ camera: StationConfig.Camera) {
        device = camera.device
        preference = FormatPreference(camera.format)
        width = camera.width
        height = camera.height
        controls = camera.controls
        controlsIfPresent = camera.controlsIfPresent
    }

    public var isSynthetic: Bool { device == "synthetic" }

    public var negotiation: FormatNegotiation {
        // The synthetic camera has no natural size; a laptop-webcam-like
        // 1280×720 keeps the demo light.
        if isSynthetic, width == nil {
            return FormatNegotiation(preference: preference == .mjpeg ? .auto : preference, width: 1280, height: 720)
        }
        return FormatNegotiation(preference: isSynthetic && preference == .mjpeg ? .auto : preference, width: width, height: height)
    }

    /// A factory for the engine, which calls it on its own thread.
    public func sourceFactory() -> @Sendable () -> any CameraSource {
        let me = self
        return {
            if me.isSynthetic {
                return SyntheticCamera(settings: .init(negotiation: me.negotiation, pattern: me.pattern, controls: me.controls))
            }
            return V4L2Camera(settings: .init(device: me.device, negotiation: me.negotiation, controls: me.controls,
                                              controlsIfPresent: me.controlsIfPresent))
        }
    }
}

extension CaptureEngine.Settings {
    /// Engine settings from `[camera]`.
    public init(_ camera: StationConfig.Camera) {
        self.init(warmupFrames: camera.warmupFrames, jpegQuality: camera.jpegQuality, previewWidth: camera.previewWidth)
    }
}
