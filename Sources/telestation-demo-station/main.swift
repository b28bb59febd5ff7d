import Basics
// A station daemon on the in-memory DemoBackend and synthetic camera, for
// the kiosk browser test, the systemd notify test and page development:
//
//   telestation-demo-station [--config station.toml] [--listen 127.0.0.1:0]
//
// Environment knobs (all optional):
//   TELESTATION_DEMO_WEDGE=PATH            upload loop stalls while PATH exists
//   TELESTATION_DEMO_RATE=BYTES_PER_SECOND simulated uplink rate (default 65536)
//   TELESTATION_DEMO_RECOVERY_MS=N         time queue recovery takes
//   TELESTATION_DEMO_WARNINGS=blurry,...   warnings for every capture
//   TELESTATION_DEMO_ROUND_MS=N            upload loop round (default 250)
//   TELESTATION_DEMO_CAMERA=off            no synthetic camera (idle benchmarks)
//   TELESTATION_DEMO_PROBLEMS=disk,token,camera   report these health problems (stick: a USB stick is mounted)
// It prints `listening http://HOST:PORT/` on stdout once the port is bound.
import Config
import JournalLog
import ConfigFile
import Foundation
import Logging
import Station
import StationDemo

var config = StationConfig()
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard let value = arguments.first else {
        FileHandle.standardError.write(Data("telestation-demo-station: \(flag) needs a value\n".utf8))
        exit(ExitStatus.usage.rawValue)
    }
    arguments.removeFirst()
    switch flag {
    case "--config":
        do { config = try StationConfig.load(path: value) } catch {
            FileHandle.standardError.write(Data("telestation-demo-station: \(error)\n".utf8))
            exit(ConfigError.exitCode)
        }
    case "--listen":
        config.kiosk.listen = value
    case "--language":
        guard let l = StationConfig.Language(rawValue: value) else { exit(ExitStatus.usage.rawValue) }
        config.kiosk.language = l
    default:
        FileHandle.standardError.write(Data("telestation-demo-station: unknown option \(flag)\n".utf8))
        exit(ExitStatus.usage.rawValue)
    }
}

let env = ProcessInfo.processInfo.environment
JournalLogHandler.bootstrap(level: env["TELESTATION_DEMO_DEBUG"] != nil ? .debug : .info)
let logger = Logger(label: "telestation")

let monitor = LoopMonitor(loops: [.capture, .upload])
let backend = DemoBackend(
    monitor: monitor,
    simulatedRate: env["TELESTATION_DEMO_RATE"].flatMap(Int64.init) ?? 64 * 1024,
    recoveryDelay: .milliseconds(env["TELESTATION_DEMO_RECOVERY_MS"].flatMap(Int.init) ?? 0))
if let w = env["TELESTATION_DEMO_WARNINGS"] {
    backend.setWarningsForEveryCapture(w.split(separator: ",").compactMap { CaptureWarning(rawValue: String($0)) })
}
for problem in (env["TELESTATION_DEMO_PROBLEMS"] ?? "").split(separator: ",") {
    switch problem {
    case "disk": backend.setDiskNearlyFull(true)
    case "token": backend.setHub(.rejectedToken)
    case "camera": backend.camera.isMissing = true
    case "stick": backend.setStick("/media/telestation-usb")
    default: break
    }
}
let round = Duration.milliseconds(env["TELESTATION_DEMO_ROUND_MS"].flatMap(Int.init) ?? 250)
var daemon = StationDaemon(config: config, backend: backend, monitor: monitor,
                           services: backend.services(roundInterval: round, wedgePath: env["TELESTATION_DEMO_WEDGE"],
                                                                      camera: env["TELESTATION_DEMO_CAMERA"] != "off"),
                           logger: logger)
daemon.onListening = { host, port in
    FileHandle.standardOutput.write(Data("listening http://\(host):\(port)/\n".utf8))
}
do {
    try await daemon.run()
} catch {
    logger.critical("daemon failed: \(error)")
    exit(ExitStatus.failure.rawValue)
}
