import Basics
import Capture
import Config
import Spool
import Synchronization

/// The context stored with each capture: the camera's identity (probed
/// once per device node, then remembered) and the clock's state at the
/// moment of capture. The image type and dermoscopy settings come from the
/// camera profile in the configuration.
public final class CaptureContexts: Sendable {
    private let identities = Mutex<[String: DeviceIdentity]>([:])
    private let probe: @Sendable (String) -> DeviceIdentity

    public init(probe: @escaping @Sendable (String) -> DeviceIdentity = DeviceIdentity.probe) {
        self.probe = probe
    }

    /// `camera`: the configured camera with its profile applied, whose
    /// image type and dermoscopy settings the image keeps even if the
    /// configuration changes before it is sent.
    public func context(forStillFrom device: String, camera: StationConfig.Camera) -> CaptureContext {
        let identity = identity(of: device)
        return CaptureContext(imageType: camera.imageType.rawValue, manufacturer: identity.manufacturer,
                              model: identity.model, serial: identity.serial, polarized: camera.polarized,
                              contact: camera.contact, clockSynchronized: ClockSync.isSynchronized())
    }

    /// The device's identity, probed once per device node.
    public func identity(of device: String) -> DeviceIdentity {
        if let known = identities.withLock({ $0[device] }) { return known }
        let found = probe(device)
        identities.withLock { $0[device] = found }
        return found
    }
}
