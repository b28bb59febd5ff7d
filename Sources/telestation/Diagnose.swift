import Basics
import ArgumentParser
import Config
import Diagnostics
import Foundation
import Station

struct Diagnose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Check camera, storage, clock, network and hub; say what is wrong and what to do.",
        discussion: "Exit status: 0 all passed, 1 a warning, 2 a failure.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: ArgumentHelp("Run only these groups, e.g. camera,hub.", valueName: "groups"))
    var only: String?

    @Option(help: ArgumentHelp("Write a support bundle (report, redacted config, queue summary, cameras, logs).", valueName: "file.tar.gz"))
    var bundle: String?

    @Option(name: .customLong("capture-test"), help: ArgumentHelp("Save the camera check's test capture here.", valueName: "file.jpg"))
    var captureTest: String?

    func run() async throws {
        // The report is the output; routine log lines would only interleave with it.
        LogSetup.once(level: options.verbose ? .debug : .error)
        let context = DiagnosticContext(configPath: options.configPath, captureTestPath: captureTest)
        let runner = DiagnosticRunner.standard()
        let selected = Set((only ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let unknown = selected.filter { s in !runner.groups.contains(s) && !runner.checks.contains { $0.name == s } }
        if !unknown.isEmpty {
            Self.report(CommandFailure(message: "--only: unknown check group \(unknown.sorted().joined(separator: ", ")); groups are \(runner.groups.joined(separator: ", "))", code: .usage))
        }
        let report = await runner.run(context, only: selected)
        print(json ? report.json() : report.table(color: isatty(STDOUT_FILENO) != 0), terminator: json ? "\n" : "")
        if let stateDir = context.config?.station.stateDir {
            // For the station's next health report to the hub. A technician
            // who may not write the state directory still gets the report.
            let verdict = HealthReport.DiagnoseVerdict(verdict: HealthReport.DiagnoseVerdict.verdict(exitCode: report.exitCode),
                                                       at: report.generatedAt, only: selected.isEmpty ? nil : selected.sorted())
            try? HealthReporter.recordDiagnose(verdict, stateDir: stateDir)
        }
        if let bundle {
            do {
                try SupportBundle(report: report, context: context, attachments: SupportBundle.stationAttachments(context)).write(to: bundle)
                FileHandle.standardError.write(Data("support bundle written to \(bundle)\n".utf8))
            } catch {
                Self.report(CommandFailure(message: "cannot write the support bundle \(bundle): \(error.localizedDescription)", code: .cannotCreate))
            }
        }
        throw ExitCode(report.exitCode)
    }
}
