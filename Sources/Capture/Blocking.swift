import Basics

extension DeviceDiscovery {
    /// `captureDevices()` for async callers: the `ioctl` probes run on the
    /// shared blocking pool.
    public func captureDevices() async -> [DeviceInfo] {
        await Blocking.run { () -> [DeviceInfo] in captureDevices() }
    }
}
