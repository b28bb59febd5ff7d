import ArgumentParser
import Config
import ConfigFile
import Foundation

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration file, or print an annotated example.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print the annotated example configuration with every key.")
    var example = false

    func run() async throws {
        if example {
            print(ConfigSchema.exampleText(), terminator: "")
            return
        }
        do {
            let config = try options.load()
            print("\(options.configPath): OK (station \(config.station.id), hub \(config.hub.url ?? "not set: uploads off"), camera \(config.camera.device))")
        } catch {
            Self.report(error)
        }
    }
}
