import Basics
import ArgumentParser
import Capture
import Config
import ConfigFile
import Foundation
import Logging
import Spool
import Station
import Uplink

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the station daemon (camera, kiosk page, background uploads); systemd starts this.",
        discussion: """
            Serves the kiosk page and control API on kiosk.listen, keeps the camera streaming for the live \
            preview, and uploads the queue in the background. Under systemd (Type=notify) it reports READY \
            once the queue is recovered and the port is bound, pets the watchdog while its capture and \
            upload loops make their rounds, and stops cleanly on SIGTERM.
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            let config = try options.load()
            let kioskToken = try config.kioskToken()
            try KioskAccess.check(listen: config.kiosk.listen, token: kioskToken, configPath: options.configPath)
            let logger = Logger(label: "telestation")
            // Opening the spool runs its recovery pass: READY comes after it.
            let spool = try config.openSpool()
            let worker = config.hub.url == nil ? nil : try config.makeUploadWorker(spool: spool)
            if worker == nil { logger.warning("hub.url is not set: images are captured and queued but not uploaded") }

            let camera = config.camera(with: Self.profile(for: config, logger: logger))
            var settings = CaptureEngine.Settings(camera)
            settings.livePreviewInterval = 0.2
            let engine = CaptureEngine(settings: settings, source: CameraSelection(camera).sourceFactory())

            let monitor = LoopMonitor(loops: [.capture, .upload])
            let backend = LiveBackend(config: config, spool: spool, engine: engine, worker: worker, monitor: monitor, logger: logger)
            // Loops report at least twice per watchdog ping interval.
            let round = min(Duration.seconds(10), (NotifyEnvironment().pingInterval ?? .seconds(20)) / 2)
            var daemon = StationDaemon(config: config, backend: backend, monitor: monitor, services: backend.services(round: round), logger: logger)
            // What the daemon tells systemd, for `telestation diagnose`.
            daemon.notifyRecordPath = NotifyRecord.path(stateDir: config.station.stateDir)
            daemon.accessToken = kioskToken
            daemon.onListening = { host, port in
                logger.info("kiosk page and control API on http://\(host):\(port)/")
                // For scripts and tests that start the daemon and wait for its port.
                FileHandle.standardOutput.write(Data("listening http://\(host):\(port)/\n".utf8))
            }
            try await daemon.run()
        } catch let error as ConfigError {
            Self.report(ConfigFailure(error: error))
        } catch let error as StationError {
            Self.report(CommandFailure(message: error.description, code: .software))
        } catch {
            Self.report(error)
        }
    }

    /// The camera profile for the configured device, from the installed profiles.
    static func profile(for config: StationConfig, logger: Logger) -> CameraProfile? {
        let profiles: [CameraProfile]
        do {
            profiles = try CameraProfile.loadAll(directory: CameraProfile.directory)
        } catch {
            logger.error("camera profiles: \(error)")
            return nil
        }
        guard !profiles.isEmpty, let identity = DeviceDiscovery().identity(of: config.camera.device) else { return nil }
        let profile = CameraProfile.match(identity, in: profiles)
        if let profile { logger.info("camera profile: \(profile.name)") }
        return profile
    }
}
