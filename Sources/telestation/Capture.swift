import ArgumentParser
import Config

struct Capture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture a still from the camera and queue it for upload.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            _ = try options.load()
            throw notImplemented("telestation capture")
        } catch {
            Self.report(error)
        }
    }
}
