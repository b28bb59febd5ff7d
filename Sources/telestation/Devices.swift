import ArgumentParser
import Capture
import Config
import ConfigFile
import Foundation

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the V4L2 cameras on this station with formats, sizes and controls.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Directory holding the device nodes.", visibility: .hidden))
    var devRoot = "/dev"

    func run() async throws {
        // Listing cameras needs no configuration: it is what a technician
        // runs before writing one.
        options.setUpLogging()
        let discovery = DeviceDiscovery(devRoot: devRoot)
        var devices = await discovery.captureDevices()
        do {
            let profiles = try CameraProfile.loadAll(directory: CameraProfile.directory)
            for i in devices.indices { devices[i].profile = discovery.matchProfile(devices[i], in: profiles) }
        } catch {
            FileHandle.standardError.write(Data("telestation: camera profiles not used: \(error)\n".utf8))
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try enc.encode(devices))
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        if devices.isEmpty {
            print("No V4L2 capture devices found under \(devRoot). Plug in the camera (check `dmesg`), or set camera.device = \"synthetic\".")
            return
        }
        for d in devices { print(Self.describe(d)) }
    }

    static func describe(_ d: DeviceInfo) -> String {
        var out = "\(d.path): \(d.card) (driver \(d.driver) \(d.version), bus \(d.bus))\n"
        if let id = d.byIdPath { out += "  stable path: \(id)\n" }
        out += "  profile: " + (d.profile.map { "\($0.name) (\($0.id), matched by \($0.matchedBy))" } ?? "none (the configuration's camera settings apply as they are)") + "\n"
        out += "  formats:\n"
        for f in d.formats {
            out += "    \(f.fourcc) \(f.description)\(f.compressed ? " (compressed)" : "")\n"
            for s in f.sizes {
                switch s.kind {
                case .discrete:
                    let fps = s.intervals.compactMap(Self.fps).map { String(format: "%g", $0) }
                    out += "      \(s.width)x\(s.height)\(fps.isEmpty ? "" : " @ \(fps.joined(separator: ", ")) fps")\n"
                case .stepwise, .continuous:
                    out += "      \(s.minWidth ?? 0)x\(s.minHeight ?? 0) to \(s.width)x\(s.height) (\(s.kind.rawValue), step \(s.stepWidth ?? 1)x\(s.stepHeight ?? 1))\n"
                }
            }
        }
        if !d.controls.isEmpty {
            out += "  controls:\n"
            for c in d.controls {
                var line = "    \(c.name) (\(c.type))"
                if c.type != "button" { line += " \(c.minimum)...\(c.maximum)" + (c.step > 1 ? " step \(c.step)" : "") + " default \(c.defaultValue)" }
                if let v = c.value { line += " = \(v)" }
                if !c.flags.isEmpty { line += " [\(c.flags.joined(separator: ", "))]" }
                out += line + "\n"
                for m in c.menu { out += "        \(m)\n" }
            }
        }
        return out
    }

    /// "1/30" → 30.
    static func fps(_ interval: String) -> Double? {
        let parts = interval.split(separator: "/")
        guard parts.count == 2, let n = Double(parts[0]), let d = Double(parts[1]), n > 0 else { return nil }
        return d / n
    }
}
