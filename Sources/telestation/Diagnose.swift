import ArgumentParser
import Config

struct Diagnose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Check camera, storage, clock, network and hub; say what is wrong and what to do.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation diagnose")
        } catch {
            Self.report(error)
        }
    }
}
