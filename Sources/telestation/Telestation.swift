import ArgumentParser
import Config
import JournalLog
import ConfigFile
import Foundation
import Logging

@main
struct Telestation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telestation",
        abstract: "Captures clinical images at a health post and delivers them to the telehealth hub over unreliable links.",
        subcommands: [
            Run.self, Capture.self, Enqueue.self, Sync.self, Status.self, Release.self, Devices.self, Diagnose.self,
            ConfigCommand.self,
        ])
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (default: $TELESTATION_CONFIG or /etc/telestation/station.toml).",
                                            valueName: "path"))
    var config: String?

    @Flag(name: .shortAndLong, help: "Log debug details.")
    var verbose = false

    @Flag(name: .shortAndLong, help: "Log only warnings and errors.")
    var quiet = false

    var configPath: String { config ?? StationConfig.defaultPath }

    /// Sets up logging and loads the configuration; a bad configuration
    /// ends the process with one line and exit code 78.
    func load() throws -> StationConfig {
        setUpLogging()
        do {
            return try StationConfig.load(path: configPath)
        } catch {
            throw ConfigFailure(error: error)
        }
    }

    func setUpLogging() {
        LogSetup.once(level: verbose ? .debug : quiet ? .warning : .info)
    }
}

enum LogSetup {
    nonisolated(unsafe) private static var done = false
    /// Called from the main task before any concurrency starts.
    static func once(level: Logger.Level) {
        guard !done else { return }
        done = true
        JournalLogHandler.bootstrap(level: level)
    }
}

/// A configuration error, printed as one line with exit code 78 (EX_CONFIG).
struct ConfigFailure: Error, CustomStringConvertible {
    let error: ConfigError
    var description: String { "configuration error: \(error)" }
}

/// A failure a person can act on: one line, a chosen exit code, no trace.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var code: Int32 = 1
    var description: String { message }
}

extension ParsableCommand {
    /// Runs `body`, turning the project's errors into one-line messages and exit codes.
    static func report(_ error: Error) -> Never {
        switch error {
        case let e as ConfigFailure:
            FileHandle.standardError.write(Data("telestation: \(e)\n".utf8))
            Foundation.exit(ConfigError.exitCode)
        case let e as CommandFailure:
            FileHandle.standardError.write(Data("telestation: \(e.message)\n".utf8))
            Foundation.exit(e.code)
        default:
            exit(withError: error)
        }
    }
}

/// Exit status for subcommands whose capability is not built yet.
func notImplemented(_ what: String) -> CommandFailure {
    CommandFailure(message: "\(what) is not implemented yet in this version of telestation", code: 69)
}
