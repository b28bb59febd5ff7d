import Capture
import Config
import ConfigFile
import Foundation
import Imaging
import Spool
import StationAPI

/// The camera opens, offers the configured format and size, and takes a
/// test still within the timeout that is neither dark, overexposed,
/// blurred nor frozen.
public struct CameraCheck: DiagnosticCheck {
    public let name = "camera"
    public var timeout: Double { 60 }
    /// Where device nodes live; tests point this elsewhere.
    public var devRoot = "/dev"
    public var sysRoot = "/sys"
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        // The daemon owns the camera while it runs; a second open would get EBUSY.
        if let state = Self.daemonCamera(config) {
            return [state == "ok"
                ? result(.pass, "the running daemon streams from the camera")
                : result(.fail, "the running daemon reports the camera \(state)",
                         next: "check the camera's USB cable and `dmesg | tail`; the daemon reopens it by itself once it is back")]
        }
        var results: [CheckResult] = []
        let discovery = DeviceDiscovery(devRoot: devRoot)
        var device = config.camera.device
        if device == "auto" {
            do { device = try discovery.firstCaptureDevice() } catch {
                return [result(.fail, error.message, next: error.nextStep)]
            }
        }
        if device != "synthetic" {
            do {
                let info = try discovery.inspect(device)
                let formats = info.formats.map { $0.fourcc.description }.joined(separator: ", ")
                let profile = (try? CameraProfile.loadAll(directory: CameraProfile.directory)).flatMap { discovery.matchProfile(info, in: $0, sysRoot: sysRoot) }
                var details = ["card": info.card, "driver": info.driver, "bus": info.bus]
                if let profile { details["profile"] = profile.id }
                results.append(CheckResult(check: "camera.device", status: .pass,
                                           finding: "\(device): \(info.card) (\(info.driver)), formats \(formats), profile \(profile.map { "\($0.name) (matched by \($0.matchedBy))" } ?? "none")",
                                           details: details))
                if let w = config.camera.width, let h = config.camera.height,
                   !info.formats.contains(where: { f in f.sizes.contains { $0.allows(w, h) } }) {
                    results.append(CheckResult(check: "camera.size", status: .warn, finding: "the camera offers no format at \(w)x\(h)",
                                               nextStep: "pick a size `telestation devices` lists, or remove camera.width/height for the largest"))
                }
            } catch {
                return results + [result(.fail, "\(device): \(error.message)", next: error.nextStep ?? "run `telestation devices` to see the cameras")]
            }
        }

        var camera = config.camera
        camera.device = device
        var settings = CaptureEngine.Settings(camera)
        settings.frameTimeout = 10
        let engine = CaptureEngine(settings: settings, source: CameraSelection(camera).sourceFactory())
        let outcome = Self.twoStills(engine)
        switch outcome {
        case let .failure(error):
            results.append(CheckResult(check: "camera.capture", status: .fail, finding: "test capture failed: \(error.message)",
                                       nextStep: error.nextStep ?? "run `telestation capture --output /tmp/test.jpg --verbose` for details"))
        case let .success((first, second)):
            if let path = ctx.captureTestPath { try? second.jpeg.write(to: URL(fileURLWithPath: path)) }
            let m = second.metrics
            let details = ["width": "\(second.width)", "height": "\(second.height)", "format": second.sourceFormat.description,
                           "mean_luminance": String(format: "%.1f", m.meanLuminance),
                           "sharpness": String(format: "%.1f", m.laplacianVariance)]
            let line = "test still \(second.width)x\(second.height) from \(second.sourceFormat), mean luminance \(String(format: "%.0f", m.meanLuminance)), sharpness \(String(format: "%.0f", m.laplacianVariance))"
            if first.jpeg == second.jpeg && device != "synthetic" {
                results.append(CheckResult(check: "camera.capture", status: .fail, finding: "frozen: two stills a second apart are identical",
                                           nextStep: "the camera sends a stuck frame: unplug it, wait 5 s and plug it back; try another USB port", details: details))
            } else if m.flags.contains(.tooDark) {
                results.append(CheckResult(check: "camera.capture", status: .warn, finding: line + ": too dark",
                                           nextStep: "check the lens cap and the dermatoscope's light; raise exposure under [camera.controls]", details: details))
            } else if m.flags.contains(.overexposed) {
                results.append(CheckResult(check: "camera.capture", status: .warn, finding: line + ": overexposed",
                                           nextStep: "reduce the light or glare (polarised mode), or lower exposure under [camera.controls]", details: details))
            } else if m.flags.contains(.blurred) {
                results.append(CheckResult(check: "camera.capture", status: .warn, finding: line + ": blurred",
                                           nextStep: "clean the lens and check focus; with a contact dermatoscope, press it flat on the skin", details: details))
            } else {
                results.append(CheckResult(check: "camera.capture", status: .pass, finding: line, details: details))
            }
            for w in second.warnings {
                results.append(CheckResult(check: "camera.quality", status: .warn, finding: w.message,
                                           nextStep: "teledermatology needs at least 800x600 in colour: set a larger size or use the camera's MJPEG"))
            }
        }
        return results
    }

    static func twoStills(_ engine: CaptureEngine) -> Result<(CapturedStill, CapturedStill), CaptureError> {
        waitForAsync {
            engine.start()
            let outcome: Result<(CapturedStill, CapturedStill), CaptureError>
            do {
                let a = try await engine.captureStill(timeout: 40)
                try await Task.sleep(for: .seconds(1))
                let b = try await engine.captureStill(timeout: 20)
                outcome = .success((a, b))
            } catch let e as CaptureError {
                outcome = .failure(e)
            } catch {
                outcome = .failure(CaptureError(.stopped, "\(error)"))
            }
            await engine.stop()
            return outcome
        }
    }

    /// The camera state the running daemon reports, or nil when no daemon answers.
    static func daemonCamera(_ config: StationConfig) -> String? {
        guard let client = try? ControlClient(listen: config.kiosk.listen, token: try? config.kioskToken(), timeout: 3) else { return nil }
        return waitForAsync {
            guard let status = await client.status() else { return nil }
            return status.problems.first { $0.hasPrefix("camera ") }.map { String($0.dropFirst("camera ".count)) } ?? "ok"
        }
    }
}

/// The queue's database and files agree, and nothing waits too long.
public struct QueueCheck: DiagnosticCheck {
    public let name = "storage.queue"
    public var timeout: Double { 60 }
    public init() {}

    public func run(_ ctx: DiagnosticContext) -> [CheckResult] {
        guard let config = ctx.config else { return skip("configuration does not load") }
        let lookup = SpoolKey.lookup(keyFile: config.spool.keyFile, environment: ctx.environment)
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            return [result(.pass, "no queue yet at \(config.databasePath) (nothing captured on this station)"),
                    Self.encryption(lookup, config, plaintextFiles: 0)]
        }
        let spool: Spool
        do throws(SpoolError) {
            // Inspect only: works without the key and encrypts nothing.
            let protection = try SpoolProtection.decide(lookup, allowPlaintext: config.spool.insecureAllowPlaintext, purpose: .inspect)
            spool = try Spool(config: config, protection: protection)
        } catch {
            return [result(.fail, "the queue cannot be opened: \(error.message)", next: error.nextStep)]
        }
        var results: [CheckResult] = []
        do {
            let report = try spool.integrityCheck()
            if report.isHealthy {
                results.append(result(.pass, "queue database and files agree (integrity_check ok)"))
            } else {
                var parts: [String] = []
                if report.sqlite != ["ok"] && !report.sqlite.isEmpty { parts.append("SQLite: \(report.sqlite.prefix(2).joined(separator: "; "))") }
                if !report.missingFiles.isEmpty { parts.append("\(report.missingFiles.count) item(s) without their file") }
                if !report.mismatchedFiles.isEmpty { parts.append("\(report.mismatchedFiles.count) file(s) whose size or hash changed") }
                if !report.unknownFiles.isEmpty { parts.append("\(report.unknownFiles.count) unknown file(s) in the spool") }
                results.append(result(.fail, "queue damaged: " + parts.joined(separator: ", "),
                                      next: "restart the service (its recovery pass re-adopts or marks these), then send the diagnose bundle to the hub's operators"))
            }
            results.append(Self.encryption(lookup, config, plaintextFiles: report.plaintextFiles.count))
            let status = try spool.status()
            let held = status.pending.filter { $0.state == .held }
            if let age = status.oldestPendingAge {
                let line = "\(status.pending.count) pending (\(Units.formatBytes(status.bytesPending))), oldest waiting \(Units.formatDuration(age))"
                let d = ["pending": "\(status.pending.count)", "bytes_pending": "\(status.bytesPending)", "oldest_pending_age_s": "\(Int(age))"]
                if age > 86400 {
                    results.append(CheckResult(check: "storage.pending", status: .warn, finding: line,
                                               nextStep: "images are not leaving the station: see the network and hub checks, or run `telestation sync`", details: d))
                } else {
                    results.append(CheckResult(check: "storage.pending", status: .pass, finding: line, details: d))
                }
            }
            for item in held.prefix(5) {
                results.append(CheckResult(check: "storage.held", status: .warn,
                                           finding: "item \(item.id) (case \(item.metadata.caseID)) held: \(item.lastError ?? "no reason recorded")",
                                           nextStep: "fix the cause, then release it: `telestation status --item \(item.id)` shows its history"))
            }
        } catch {
            results.append(result(.fail, "the queue cannot be read: \(error.message)", next: error.nextStep))
        }
        return results
    }
}

extension QueueCheck {
    /// Whether images are encrypted at rest: the key is found and usable,
    /// and no queued file is still stored in plaintext.
    static func encryption(_ lookup: SpoolKey.Lookup, _ config: StationConfig, plaintextFiles: Int) -> CheckResult {
        let check = "storage.encryption"
        switch lookup {
        case let .found(key) where plaintextFiles > 0:
            return CheckResult(check: check, status: .warn,
                               finding: "\(plaintextFiles) queued image file(s) are still stored unencrypted (key \(key.source) is in place)",
                               nextStep: "restart the daemon (systemctl restart telestation): opening the queue with the key encrypts them")
        case let .found(key):
            return CheckResult(check: check, status: .pass, finding: "images are encrypted at rest (AES-256-GCM, key \(key.source))")
        case let .missing(path) where config.spool.insecureAllowPlaintext:
            return CheckResult(check: check, status: .fail,
                               finding: "encryption is OFF: spool.insecure_allow_plaintext is set and there is no key at \(path); patient images are stored unencrypted",
                               nextStep: "create the key (\(SpoolKey.createCommand(path))), remove insecure_allow_plaintext and restart the daemon; it encrypts the queued images at start")
        case let .missing(path):
            return CheckResult(check: check, status: .fail,
                               finding: "no spool key at \(path): the station refuses to store images",
                               nextStep: "create it: \(SpoolKey.createCommand(path)), then restart the daemon")
        case let .notPermitted(error):
            return CheckResult(check: check, status: .warn, finding: "\(error.message): not checked as this user",
                               nextStep: "run `sudo telestation diagnose` to check the key")
        case let .unusable(error):
            return CheckResult(check: check, status: .fail, finding: error.message, nextStep: error.nextStep)
        }
    }
}
