import Basics
import Capture
import Config
import Foundation
import Spool
import Station

extension Capture {
    /// `telestation capture --case ID`: the still and its preview join the upload queue.
    func captureToQueue(_ config: StationConfig) async throws {
        guard let caseID else {
            throw CommandFailure(message: "give --case ID to queue the capture, or --output FILE to write it to a file", code: .usage)
        }
        // The same validation as the kiosk, so a typo fails here with the same message.
        let request: CaptureRequest
        do {
            var fields: [String: String] = ["case_id": caseID, "site": site, "priority": urgent ? "urgent" : "routine"]
            if !note.isEmpty { fields["note"] = note }
            request = try CaptureRequestValidator().validate(json: JSONSerialization.data(withJSONObject: fields))
        } catch let error as StationError {
            throw CommandFailure(message: error.description, code: .usage)
        }

        // The daemon owns the camera while it runs (a second open gets EBUSY).
        if let client = try? ControlClient(listen: config.kiosk.listen, token: try? config.kioskToken()), await client.status() != nil {
            do {
                let (item, queued) = try await client.capture(request, accept: true)
                var line = "queued \(item.id) through the running daemon: case \(item.request.caseId), \(item.request.site), \(item.width)x\(item.height), \(Units.formatBytes(item.bytes))"
                if let queued { line += ", \(queued.state.rawValue)" }
                print(line)
                for warning in item.warnings { print("warning: \(warning.rawValue.replacingOccurrences(of: "_", with: " "))") }
                return
            } catch {
                throw CommandFailure(message: "the daemon could not capture: \(error)", code: .unavailable)
            }
        }

        let spool = try config.openSpool()
        let engine = makeEngine(config)
        engine.start()
        let still: CapturedStill
        do {
            still = try await engine.captureStill(timeout: timeout * 2 + Double(engine.settings.warmupFrames) * 2)
        } catch {
            await engine.stop()
            throw CommandFailure(message: "capture failed: \(error)", code: Self.exitCode(error))
        }
        await engine.stop()
        let stamp = ISO8601DateFormatter().string(from: still.capturedAt).replacingOccurrences(of: ":", with: "")
        let metadata = ItemMetadata(caseID: request.caseId, site: request.site, note: request.note,
                                    priority: request.priority == .urgent ? .urgent : .routine,
                                    capturedAt: still.capturedAt, filename: "\(config.station.id)-\(request.caseId)-\(stamp).jpg",
                                    context: CaptureContexts().context(forStillFrom: still.stream.device, camera: config.camera))
        let result: EnqueueResult
        do {
            result = try spool.enqueue(imageData: still.jpeg, preview: still.preview, metadata: metadata)
        } catch {
            throw CommandFailure(message: "not queued: \(error)", code: .cannotCreate)
        }
        print("queued as item \(result.imageID)\(result.previewID.map { " (preview item \($0))" } ?? ""): case \(request.caseId), \(request.site), "
              + "\(still.width)x\(still.height) JPEG, \(Units.formatBytes(Int64(still.jpeg.count))) from \(still.sourceFormat) on \(still.stream.device)")
        for f in still.metrics.flags { print("warning: \(f.rawValue): consider capturing again") }
        for w in still.warnings { print("warning: \(w.message)") }
    }
}
