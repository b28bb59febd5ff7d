import Station
import Testing

/// Which mount is a USB stick, from real mountinfo lines (a Raspberry Pi OS
/// station with its SD card, a udisks2 mount with a space in the label, the
/// package's udev mount, and things that are not sticks).
@Suite struct StickMountsTests {
    static let table = """
        22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
        23 22 179:1 / /boot/firmware rw,relatime shared:2 - vfat /dev/mmcblk0p1 rw,fmask=0022
        40 22 0:36 / /run/user/1000 rw,nosuid,nodev shared:20 - tmpfs tmpfs rw
        41 22 0:40 / /mnt/nfs rw,relatime shared:21 - nfs4 hub:/export rw
        55 22 8:1 / /media/pi/MY\\040STICK rw,nosuid,nodev,relatime shared:30 - vfat /dev/sda1 rw,uid=1000
        56 22 8:17 / /media/telestation-usb ro,relatime shared:31 - exfat /dev/sdb1 ro
        """

    @Test func parsesMountinfo() {
        let mounts = StickMounts.parse(Self.table)
        #expect(mounts.count == 6)
        #expect(mounts[4].mountPoint == "/media/pi/MY STICK")
        #expect(mounts[4].source == "/dev/sda1" && mounts[4].type == "vfat" && !mounts[4].readOnly)
        #expect(mounts[5].readOnly)
    }

    @Test func picksTheUSBStickNotTheBootPartition() {
        let mounts = StickMounts.parse(Self.table)
        // /boot/firmware is vfat too, but not under a stick root.
        #expect(StickMounts.stick(in: mounts)?.mountPoint == "/media/pi/MY STICK")
        #expect(StickMounts.stick(in: Array(mounts.prefix(4))) == nil)
        // A path that only starts like a root is not under it.
        let lookalike = StickMounts.parse("60 22 8:1 / /mediastick rw - vfat /dev/sda1 rw")
        #expect(StickMounts.stick(in: lookalike) == nil)
        // tmpfs or a network share under /mnt is not a stick.
        #expect(StickMounts.stick(in: StickMounts.parse("61 22 0:5 / /mnt/x rw - tmpfs tmpfs rw")) == nil)
    }
}
