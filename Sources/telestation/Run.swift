import ArgumentParser
import Config

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the station daemon (camera, kiosk page, background uploads); systemd starts this.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation run")
        } catch {
            Self.report(error)
        }
    }
}
