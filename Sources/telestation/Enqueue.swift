import ArgumentParser
import Config

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Queue existing JPEG files for upload.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation enqueue")
        } catch {
            Self.report(error)
        }
    }
}
