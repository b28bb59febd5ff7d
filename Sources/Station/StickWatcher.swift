import Basics
import Config
import Foundation
import Logging
import ServiceLifecycle
import Sneakernet
import Spool
import StationAPI
import Synchronization

/// Which mounted filesystem is a USB stick, from `/proc/self/mountinfo`:
/// a removable-media filesystem (FAT, exFAT, NTFS) from a block device,
/// mounted under one of the places desktops and the package's udev rule
/// mount sticks. A pure function of the table, tested on its own.
public enum StickMounts {
    public static let roots = ["/media", "/run/media", "/mnt"]
    public static let types: Set<String> = ["vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk"]

    public struct Mount: Sendable, Equatable {
        public var mountPoint: String
        public var type: String
        public var source: String
        public var readOnly: Bool
    }

    /// Parses mountinfo lines (proc(5)): mount point is field 5, options
    /// field 6, then optional fields up to "-", then type and source.
    public static func parse(_ text: String) -> [Mount] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 10, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { return nil }
            return Mount(mountPoint: unescape(fields[4]), type: fields[dash + 1], source: unescape(fields[dash + 2]),
                         readOnly: fields[5].split(separator: ",").contains("ro"))
        }
    }

    /// The stick to use: the first matching mount, in table order.
    public static func stick(in mounts: [Mount], roots: [String] = roots) -> Mount? {
        mounts.first { m in
            types.contains(m.type) && m.source.hasPrefix("/dev/") &&
                roots.contains { m.mountPoint == $0 || m.mountPoint.hasPrefix($0 + "/") }
        }
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = [UInt8]()
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 0x5C, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The stick as the daemon knows it, shared by the watcher and the control API.
final class StickState: Sendable {
    struct Value {
        var mount: StickMounts.Mount?
        var exporting: Int?
        var lastExport: StickOperation?
        var lastReceipts: StickOperation?
    }
    let value = Mutex(Value())
}

extension LiveBackend {
    /// Watches for a stick: when one is plugged in and mounted, the hub's
    /// receipts on it are read at once (so nothing it holds is sent again)
    /// and the kiosk offers the export.
    struct StickService: Service {
        let backend: LiveBackend
        var interval: Duration = .seconds(2)

        func run() async throws {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    await backend.lookForStick()
                    try await Task.sleep(for: interval)
                }
            }
        }
    }

    func lookForStick() async {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let found = StickMounts.stick(in: StickMounts.parse(table))
        let previous = stick.value.withLock { s -> StickMounts.Mount? in
            let old = s.mount
            s.mount = found
            return old
        }
        guard let found, found != previous else {
            if previous != nil && found == nil { logger.notice("USB stick removed", metadata: ["mount": "\(previous!.mountPoint)"]) }
            return
        }
        logger.notice("USB stick mounted", metadata: ["mount": "\(found.mountPoint)", "type": "\(found.type)", "device": "\(found.source)"])
        await importStickReceipts(found.mountPoint)
    }

    func importStickReceipts(_ root: String) async {
        let op: StickOperation
        do {
            let report = try await StickReceiptImport(spool: spool, config: config).run(root: root)
            var message = report.marked == 0 ? "no new receipts on the USB stick" : "\(report.marked) items confirmed by the hub (receipts on the USB stick)"
            if !report.waiting.isEmpty { message += "; \(report.waiting.count) bundle(s) not yet imported at the hub" }
            if !report.errors.isEmpty { message += "; receipts not believed: \(report.errors.joined(separator: "; "))" }
            op = StickOperation(at: Date(), ok: report.errors.isEmpty, message: message, items: report.marked)
            if report.marked > 0 { worker?.wake() }
        } catch {
            op = StickOperation(at: Date(), ok: false, message: "\(error)")
        }
        logger.info("USB stick receipts: \(op.message)")
        stick.value.withLock { $0.lastReceipts = op }
    }


    public func stickStatus() async -> StickStatus {
        let s = stick.value.withLock { $0 }
        let owed = (try? await spool.perform { try StickExport.owed($0.allItems()) }) ?? []
        var reason: String?
        var canExport = false
        do {
            canExport = try StickKeys(config: config).hubKeys() != nil
            if !canExport { reason = "the station has not reached the hub yet, so it cannot seal a bundle for it" }
        } catch { reason = "\(error)" }
        if s.mount == nil { reason = "no USB stick is mounted" } else if s.mount?.readOnly == true {
            canExport = false
            reason = "the USB stick is mounted read-only"
        }
        return StickStatus(mountPoint: s.mount?.mountPoint, owedItems: owed.count, owedBytes: owed.reduce(0) { $0 + $1.size },
                           canExport: canExport && !owed.isEmpty, reason: owed.isEmpty && reason == nil ? "nothing to export" : reason,
                           exporting: s.exporting, lastExport: s.lastExport, lastReceipts: s.lastReceipts)
    }

    /// Reads the stick's receipts, then writes every item still owed to it.
    public func exportToStick() async throws -> StickOperation {
        guard let mount = stick.value.withLock({ s -> StickMounts.Mount? in
            guard s.exporting == nil else { return nil }
            s.exporting = 0
            return s.mount
        }) else {
            throw StationError(.conflict, stick.value.withLock { $0.mount == nil } ? "no USB stick is mounted" : "an export is already running")
        }
        defer { stick.value.withLock { $0.exporting = nil } }
        await importStickReceipts(mount.mountPoint)
        let export = StickExport(spool: spool, config: config)
        let op: StickOperation
        do {
            let state = stick
            let written = try await export.export(to: mount.mountPoint) { done, _ in state.value.withLock { $0.exporting = done } }
            op = StickOperation(at: Date(), ok: true,
                                message: "\(written.items) items (\(Units.formatBytes(written.itemBytes))) written to the USB stick; they stay queued until the hub's receipts come back",
                                items: written.items)
        } catch {
            op = StickOperation(at: Date(), ok: false, message: "\(error)")
        }
        logger.notice("USB stick export: \(op.message)")
        stick.value.withLock { $0.lastExport = op }
        return op
    }
}
