import Capture
import Config
import Foundation
import Spool
import StationAPI

extension SupportBundle {
    /// What a station adds to the report in its bundle: the queue summary
    /// (no image bytes, no patient identifiers), the camera list, the
    /// daemon's last notify record, and a note when there is no journal.
    public static func stationAttachments(_ context: DiagnosticContext, devRoot: String = "/dev") -> [String: String] {
        var files: [String: String] = [:]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]

        let devices = DeviceDiscovery(devRoot: devRoot).captureDevices()
        files["devices.json"] = (try? encoder.encode(devices)).map { String(decoding: $0, as: UTF8.self) + "\n" } ?? "[]\n"

        if let config = context.config {
            do {
                let status = try Spool(config: config).status()
                let summary = queueSummary(StatusReport.json(status))
                files["queue.json"] = String(decoding: try encoder.encode(summary), as: UTF8.self) + "\n"
            } catch {
                files["queue.json"] = "{\"error\": \(jsonString("\(error)"))}\n"
            }
            let record = NotifyRecord.path(stateDir: config.station.stateDir)
            if let data = FileManager.default.contents(atPath: record) {
                files[NotifyRecord.fileName] = String(decoding: data, as: UTF8.self)
            }
        }
        // Replaced by the journal itself where journalctl answers.
        files["journal.txt"] = "journalctl is not available on this machine: no daemon log was collected.\n"
        return files
    }

    /// The queue as `telestation status --json` shows it, with case ids,
    /// notes and the file names made from them replaced: the bundle travels
    /// over ordinary messaging, so it carries no patient identifiers.
    static func queueSummary(_ status: StatusReport.JSONStatus) -> StatusReport.JSONStatus {
        var s = status
        s.items = status.items.map { item in
            var i = item
            if !i.case_id.isEmpty { i.filename = i.filename.replacingOccurrences(of: i.case_id, with: "[case]") }
            i.case_id = i.case_id.isEmpty ? "" : "[redacted]"
            i.note = i.note.isEmpty ? "" : "[redacted]"
            return i
        }
        return s
    }

    static func jsonString(_ s: String) -> String {
        (try? JSONEncoder().encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
