import Basics
import ArgumentParser
import Config
import JournalLog
import ConfigFile
import Foundation
import HubCommand
import Logging
#if canImport(Glibc)
import CMalloc
#endif

@main
struct Telestation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telestation",
        abstract: "Captures clinical images at a health post and delivers them to the telehealth hub over unreliable links.",
        subcommands: [
            Run.self, Capture.self, Enqueue.self, Sync.self, Status.self, Release.self, DicomCommand.self, Devices.self, Diagnose.self,
            Export.self, ImportReceipts.self,
            ConfigCommand.self,
        ])

    /// Accepts the global options before the subcommand as well as after it
    /// (`telestation --config F status`), as git and systemctl users expect.
    static func main() async {
        MallocTuning.apply()
        // Started through the telestation-hub symlink the package installs:
        // be the hub (see HubCommand for why it is one binary).
        if let argv0 = CommandLine.arguments.first, argv0.split(separator: "/").last == "telestation-hub" {
            await TelestationHub.main()
            return
        }
        let names = configuration.subcommands.map { $0._commandName }
        await main(GlobalOptions.movedAfterSubcommand(Array(CommandLine.arguments.dropFirst()), subcommands: names))
    }
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

    /// `[--config F] [-v] SUB ARGS` → `SUB --config F -v ARGS`: the parser
    /// reads these options on each subcommand. Anything else stays as given.
    static func movedAfterSubcommand(_ args: [String], subcommands: [String]) -> [String] {
        var globals: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if ["-v", "--verbose", "-q", "--quiet"].contains(a) || a.hasPrefix("--config=") {
                globals.append(a)
                i += 1
            } else if a == "--config", i + 1 < args.count {
                globals += [a, args[i + 1]]
                i += 2
            } else {
                break
            }
        }
        guard !globals.isEmpty, i < args.count, subcommands.contains(args[i]) else { return args }
        return [args[i]] + globals + args[(i + 1)...]
    }

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
    var code: ExitStatus = .failure
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
            Foundation.exit(e.code.rawValue)
        default:
            exit(withError: error)
        }
    }
}


#if canImport(Glibc)
/// glibc's allocator, told to give big buffers back. By default it raises its
/// mmap threshold to the size of any large block freed, so after the first
/// 8 MiB upload chunk every later chunk comes from an arena, and freed arena
/// memory mostly stays with the process; with a thread pool spreading the
/// chunks over up to 8 arenas per core, the daemon's resident memory grew with
/// the file: +41 MB for a 50 MB file, +72 MB for 150 MB (bench/resources).
/// A fixed threshold keeps blocks of 4 MiB and more (upload chunks, large
/// JPEGs) in mappings of their own, unmapped when freed; below it (a 1080p
/// YUYV frame is 4 147 200 bytes) the arenas serve as before, so a streaming
/// camera does not pay an mmap and fresh zeroed pages per frame. Two arenas
/// bound what the pool's threads can strand.
enum MallocTuning {
    static func apply() {
        ts_malloc_tune(4 << 20, 2)
    }
}
#else
enum MallocTuning {
    static func apply() {}
}
#endif
