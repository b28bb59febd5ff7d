import ArgumentParser
import Config

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Upload everything pending now, in the foreground, with progress.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation sync")
        } catch {
            Self.report(error)
        }
    }
}
