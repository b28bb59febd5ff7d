import ArgumentParser
import Config
import Foundation
import Station

struct Capture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture a still from the camera and queue it for upload.",
        discussion: """
            When the daemon runs it owns the camera, so the capture goes through its control API \
            on kiosk.listen; otherwise this command opens the device itself.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("case"), help: ArgumentHelp("Case id: DNI (8 digits), historia clínica number or CE number.", valueName: "id"))
    var caseId: String

    @Option(help: ArgumentHelp("Body site: \(BodySite.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "site"))
    var site: String

    @Option(help: "A short note for the specialist.")
    var note: String = ""

    @Flag(help: "Send ahead of routine cases.")
    var urgent = false

    func run() async throws {
        do {
            let config = try options.load()
            // The same validation as the kiosk, so a typo fails here with the same message.
            var fields: [String: String] = ["case_id": caseId, "site": site, "priority": urgent ? "urgent" : "routine"]
            if !note.isEmpty { fields["note"] = note }
            let request = try CaptureRequestValidator().validate(json: JSONSerialization.data(withJSONObject: fields))

            let client = try ControlClient(listen: config.kiosk.listen)
            guard await client.status() != nil else {
                throw notImplemented("capturing without the daemon running (start it with `systemctl start telestation`)")
            }
            let (item, queued) = try await client.capture(request, accept: true)
            var line = "queued \(item.id): case \(item.request.caseId), \(item.request.site), \(item.width)×\(item.height), "
            line += Units.formatBytes(item.bytes)
            if let queued { line += ", \(queued.state.rawValue)" }
            print(line)
            for warning in item.warnings { print("warning: \(warning.rawValue.replacingOccurrences(of: "_", with: " "))") }
        } catch let error as StationError {
            Self.report(CommandFailure(message: error.description, code: error.code == .invalidCaseId || error.code == .badRequest ? 64 : 69))
        } catch {
            Self.report(error)
        }
    }
}
