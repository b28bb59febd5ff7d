import Basics
import Capture
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

    public func context(forStillFrom device: String) -> CaptureContext {
        let identity = identities.withLock { $0[device] } ?? {
            let found = probe(device)
            identities.withLock { $0[device] = found }
            return found
        }()
        return CaptureContext(manufacturer: identity.manufacturer, model: identity.model, serial: identity.serial,
                              clockSynchronized: ClockSync.isSynchronized())
    }
}
