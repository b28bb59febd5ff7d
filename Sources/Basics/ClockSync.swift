/// glibc's `adjtimex(2)`; `<sys/timex.h>` is not part of Swift's Glibc
/// module. Only its return value is used, so the `struct timex` argument is
/// passed as zeroed memory larger than any ABI's layout (modes = 0: read only).
@_silgen_name("adjtimex")
private func c_adjtimex(_ buffer: UnsafeMutableRawPointer) -> Int32

/// Whether the kernel's clock is synchronised to a time source, as
/// `adjtimex(2)` reports it: NTP daemons (systemd-timesyncd, chrony) clear
/// `STA_UNSYNC` once they have disciplined the clock, and while it is set
/// the kernel answers `TIME_ERROR` (5). A station that was offline for days,
/// or that booted without a real-time clock, says "not synchronised" here,
/// and its images carry that with their acquisition time.
public enum ClockSync {
    static let timeError: Int32 = 5

    /// nil when the kernel cannot be asked.
    public static func isSynchronized() -> Bool? {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        let state = c_adjtimex(buffer)
        guard state >= 0 else { return nil }
        return state != timeError
    }
}
