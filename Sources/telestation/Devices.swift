import ArgumentParser
import Config

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the V4L2 cameras on this station with formats, sizes and controls.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation devices")
        } catch {
            Self.report(error)
        }
    }
}
