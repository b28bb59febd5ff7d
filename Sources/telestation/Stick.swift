import ArgumentParser
import Basics
import Config
import Foundation
import Sneakernet
import Spool
import Station

/// `telestation export DIR`: the queue onto a USB stick.
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every image the hub has not confirmed onto a USB stick, sealed for the hub.",
        discussion: """
            For a health post without a link for days: plug in a stick, run `telestation export /media/usb` \
            (or press the kiosk's USB button), carry the stick to where the hub is, run \
            `telestation-hub import` there, bring the stick back and run `telestation import-receipts` \
            (the kiosk does it when the stick is plugged in). The bundle is unreadable without the hub's \
            private key and signed by this station; a stick pulled mid-write leaves an unfinished bundle \
            the hub skips. Nothing leaves the queue: items stay owed until a receipt comes back, by stick \
            or over the link, and the hub keeps one copy whichever way an item arrives.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Where the stick is mounted (e.g. /media/usb).")
    var directory: String

    func run() async throws {
        do {
            let config = try options.load()
            let spool = try config.openSpool()
            let export = StickExport(spool: spool, config: config)
            let written = try await export.export(to: directory)
            print("wrote \(written.items) item\(written.items == 1 ? "" : "s") (\(Units.formatBytes(written.itemBytes))) to \(written.path) — \(Units.formatBytes(written.bundleBytes)) on the stick")
            print("the items stay queued until the hub's receipts come back: `telestation import-receipts \(directory)` after the hub imported the stick")
        } catch let error as SneakernetError {
            Self.report(CommandFailure(message: error.description, code: error.code == .refused ? .unavailable : .ioError))
        } catch {
            Self.report(error)
        }
    }
}

/// `telestation import-receipts DIR`: the hub's receipts from a USB stick.
struct ImportReceipts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-receipts",
        abstract: "Mark received every item the hub's receipts on a USB stick confirm, so none is sent again.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Where the stick is mounted.")
    var directory: String

    func run() async throws {
        do {
            let config = try options.load()
            let spool = try config.openSpool()
            let report = try await StickReceiptImport(spool: spool, config: config)
                .run(root: directory)
            print("\(report.marked) item\(report.marked == 1 ? "" : "s") marked received from \(report.bundles) bundle\(report.bundles == 1 ? "" : "s")"
                  + (report.alreadyReceived > 0 ? " (\(report.alreadyReceived) already received)" : ""))
            for name in report.waiting { print("\(name): the hub has not imported it yet") }
            for line in report.refused { print("refused by the hub, stays queued: \(line)") }
            for line in report.errors { FileHandle.standardError.write(Data("telestation: receipts not believed: \(line)\n".utf8)) }
            if !report.errors.isEmpty {
                throw CommandFailure(message: "\(report.errors.count) bundle(s) had receipts that were not believed", code: .dataError)
            }
        } catch let error as SneakernetError {
            Self.report(CommandFailure(message: error.description, code: .unavailable))
        } catch {
            Self.report(error)
        }
    }
}
