import Basics
import ArgumentParser
import Capture
import Config
import Foundation
import Imaging
import Station

struct Capture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture a still from the camera and queue it for upload (or write it to a file).",
        discussion: """
            With --case, the still and its preview join the upload queue. When the daemon \
            runs it owns the camera, so the capture goes through its control API on \
            kiosk.listen; otherwise this command opens the camera itself. With --output, \
            the JPEG (and --preview) are written to files instead. Either way the camera \
            settles for camera.warmup_frames frames first, and the size, the camera format \
            and any quality warnings (too dark, overexposed, blurred, below the diagnostic \
            floor) are printed.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("case"), help: ArgumentHelp("Queue the still for upload under this case id: DNI (8 digits), historia clínica or CE number.", valueName: "id"))
    var caseID: String?

    @Option(help: ArgumentHelp("Body site (with --case): \(BodySite.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "site"))
    var site: String = BodySite.other.rawValue

    @Option(help: "A short note for the specialist (with --case).")
    var note: String = ""

    @Flag(help: "Send ahead of routine cases (with --case).")
    var urgent = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the JPEG to this file instead of queueing it. With --count, a {n} in the name is replaced by the shot number.", valueName: "file.jpg"))
    var output: String?

    @Option(help: ArgumentHelp("Where to write the preview JPEG (camera.preview_width wide).", valueName: "file.jpg"))
    var preview: String?

    @Flag(help: "Print one JSON object per shot instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Camera to use instead of camera.device (a path, \"auto\" or \"synthetic\").", valueName: "device"))
    var device: String?

    @Option(help: ArgumentHelp("Pixel format instead of camera.format: auto, mjpeg, yuyv, nv12 or yu12.", valueName: "format"))
    var format: String?

    @Option(help: ArgumentHelp("Frame size instead of camera.width/height.", valueName: "WxH"))
    var size: String?

    @Option(help: ArgumentHelp("Frames to discard first instead of camera.warmup_frames.", valueName: "n"))
    var warmupFrames: Int?

    @Option(help: ArgumentHelp("Seconds to wait for a frame before giving up.", valueName: "seconds"))
    var timeout: Double = 10

    @Option(help: ArgumentHelp("Take this many stills from one stream, reporting each (to check a camera over time).", valueName: "n"))
    var count: Int = 1

    @Option(help: ArgumentHelp("Seconds between stills with --count.", valueName: "seconds"))
    var interval: Double = 1

    @Option(help: ArgumentHelp("Test pattern of the synthetic camera: bars, black, white or gradient.", valueName: "pattern"))
    var pattern: String = "bars"

    func validate() throws {
        if let format, FormatPreference(rawValue: format) == nil {
            throw ValidationError("--format must be one of \(FormatPreference.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(format)\"")
        }
        if let size, Self.parseSize(size) == nil {
            throw ValidationError("--size must look like 1920x1080, not \"\(size)\"")
        }
        if SyntheticCamera.Pattern(rawValue: pattern) == nil {
            throw ValidationError("--pattern must be one of \(SyntheticCamera.Pattern.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard timeout > 0, interval >= 0 else { throw ValidationError("--timeout must be positive and --interval not negative") }
        if let warmupFrames, warmupFrames < 0 { throw ValidationError("--warmup-frames cannot be negative") }
    }

    static func parseSize(_ s: String) -> (Int, Int)? {
        let p = s.lowercased().split(separator: "x")
        guard p.count == 2, let w = Int(p[0]), let h = Int(p[1]), w > 0, h > 0 else { return nil }
        return (w, h)
    }

    func run() async throws {
        do {
            let config = try options.load()
            guard let output else {
                try await captureToQueue(config)
                return
            }
            let engine = makeEngine(config)
            engine.start()
            // When watching a camera over time, also report failures the
            // engine recovered from between shots (an unplug and replug).
            let watcher = count > 1 ? Task { [self] in
                for await event in engine.events {
                    if case .failed(let e) = event { report(e, shot: nil) }
                }
            } : nil
            var failures = 0
            var lastError: CaptureError?
            for shot in 1...count {
                if shot > 1 { try await Task.sleep(for: .seconds(interval)) }
                do {
                    // Generous: warm-up at a slow frame rate can take a while.
                    let still = try await engine.captureStill(timeout: timeout * 2 + Double(engine.settings.warmupFrames) * 2)
                    try await write(still, shot: shot, loss: engine.frameLoss)
                } catch let e as CaptureError {
                    failures += 1
                    lastError = e
                    report(e, shot: shot)
                }
            }
            await engine.stop()
            await watcher?.value
            if failures > 0 {
                // Exit status from the last failure so scripts can tell a busy
                // camera (75, EX_TEMPFAIL) from a missing one (69, EX_UNAVAILABLE).
                throw CommandFailure(message: count == 1 ? "capture failed: \(lastError!)" : "\(failures) of \(count) captures failed",
                                     code: Self.exitCode(lastError!))
            }
        } catch {
            Self.report(error)
        }
    }

    /// The capture engine on the configured camera, with this command's overrides.
    func makeEngine(_ config: StationConfig) -> CaptureEngine {
        var selection = CameraSelection(config.camera)
        if let device { selection.device = device }
        if let format { selection.preference = FormatPreference(rawValue: format)! }
        if let size { (selection.width, selection.height) = Self.parseSize(size)! }
        selection.pattern = SyntheticCamera.Pattern(rawValue: pattern)!
        var settings = CaptureEngine.Settings(config.camera)
        if let warmupFrames { settings.warmupFrames = warmupFrames }
        settings.frameTimeout = timeout

        return CaptureEngine(settings: settings, source: selection.sourceFactory())
    }

    static func exitCode(_ e: CaptureError) -> ExitStatus {
        switch e.code {
        case .deviceMissing, .unplugged, .notACaptureDevice: .unavailable
        case .deviceBusy, .timeout, .bandwidth: .temporaryFailure
        case .permissionDenied: .noPermission
        case .formatUnsupported: .configuration
        default: .failure
        }
    }

    func path(_ template: String, shot: Int) -> String {
        guard count > 1 else { return template }
        if template.contains("{n}") { return template.replacingOccurrences(of: "{n}", with: String(shot)) }
        let ext = (template as NSString).pathExtension
        let stem = (template as NSString).deletingPathExtension
        return ext.isEmpty ? "\(stem)-\(shot)" : "\(stem)-\(shot).\(ext)"
    }

    func write(_ still: CapturedStill, shot: Int, loss: FrameLoss) async throws {
        let out = path(output ?? "capture.jpg", shot: shot)
        let previewPath = preview.map { path($0, shot: shot) }
        try await Blocking.run { () throws(CommandFailure) in
            try Self.writeFile(still.jpeg, to: out)
            if let previewPath { try Self.writeFile(still.preview, to: previewPath) }
        }
        let m = still.metrics
        let rejected = still.stream.rejectedControls
        if json {
            let report = ShotReport(ok: true, shot: shot, output: out, preview: previewPath, bytes: still.jpeg.count,
                                    previewBytes: still.preview.count, width: still.width, height: still.height,
                                    sourceFormat: still.sourceFormat.description, cameraEncoded: still.cameraEncoded,
                                    device: still.stream.device, card: still.stream.card, metrics: m,
                                    flags: m.flags.map(\.rawValue), warnings: still.warnings.map(\.message),
                                    rejectedControls: rejected, framesDropped: loss.dropped, framesDamaged: loss.damaged, error: nil)
            printJSON(report)
            return
        }
        print("\(out): \(still.width)x\(still.height) JPEG, \(still.jpeg.count) bytes, from \(still.sourceFormat) on \(still.stream.device) (\(still.stream.card))"
              + (still.cameraEncoded ? ", the camera's own JPEG" : ""))
        if let previewPath { print("\(previewPath): preview, \(still.preview.count) bytes") }
        let asked = still.stream.requested
        if asked.width != still.stream.width || asked.height != still.stream.height {
            print("note: asked \(still.stream.device) for \(asked.width)x\(asked.height), the driver granted \(still.stream.width)x\(still.stream.height)")
        }
        print(String(format: "mean luminance %.1f, clipped %.1f%% dark / %.1f%% bright, sharpness %.1f",
                     m.meanLuminance, m.darkClippedFraction * 100, m.brightClippedFraction * 100, m.laplacianVariance))
        for f in m.flags {
            switch f {
            case .tooDark: print("warning: the image is too dark; add light and capture again")
            case .overexposed: print("warning: the image is overexposed; reduce light or glare and capture again")
            case .blurred: print("warning: the image looks blurred; hold the camera still, refocus and capture again")
            }
        }
        for w in still.warnings { print("warning: \(w.message)") }
        for r in rejected { print("warning: camera control \(r.name) = \(r.requested) was rejected: \(r.reason ?? "")") }
    }

    /// One failed shot, or with `shot` nil a camera failure between shots.
    func report(_ e: CaptureError, shot: Int?) {
        if json {
            printJSON(ShotReport(ok: false, shot: shot, event: shot == nil ? "cameraFailed" : nil, error: e))
        } else if count > 1 {
            FileHandle.standardError.write(Data("telestation: \(shot.map { "shot \($0)" } ?? "camera"): \(e)\n".utf8))
        }
    }

    /// Writes atomically (temporary file, then rename) so a reader never sees half an image.
    static func writeFile(_ data: Data, to path: String) throws(CommandFailure) {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandFailure(message: "cannot write \(path): \((error as NSError).localizedDescription) — check that the directory exists and is writable", code: .cannotCreate)
        }
    }

    func printJSON<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? enc.encode(value) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}

/// One line of `telestation capture --json`.
struct ShotReport: Encodable {
    var ok: Bool
    var shot: Int?
    /// "cameraFailed" for a failure reported outside any shot.
    var event: String?
    var output: String?
    var preview: String?
    var bytes: Int?
    var previewBytes: Int?
    var width: Int?
    var height: Int?
    var sourceFormat: String?
    var cameraEncoded: Bool?
    var device: String?
    var card: String?
    var metrics: QualityMetrics?
    var flags: [String]?
    var warnings: [String]?
    var rejectedControls: [ControlResult]?
    /// Frames the camera dropped or delivered damaged since the command opened it.
    var framesDropped: UInt64?
    var framesDamaged: UInt64?
    var error: CaptureError?
}
