import ArgumentParser
import Config

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the upload queue: counts, bytes pending, each pending item.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation status")
        } catch {
            Self.report(error)
        }
    }
}
