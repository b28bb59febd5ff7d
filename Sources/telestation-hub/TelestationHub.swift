import ArgumentParser
import Foundation

@main
struct TelestationHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telestation-hub",
        abstract: "A small tus 1.0 server that receives images from stations.")

    func run() async throws {
        FileHandle.standardError.write(Data("telestation-hub: not implemented yet in this version\n".utf8))
        throw ExitCode(69)
    }
}
