import Basics
import ArgumentParser
import Config
import Foundation
import Spool

// Synchronous on purpose, like `status`: a few small writes to the queue.
struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Put held items back in the upload queue once what held them is fixed.",
        discussion: """
            An item is held when the hub refuses it for a reason a person must fix (412 tus version, \
            415 content type, 413 too large, a redirect) — `telestation status` shows the reason. Fix the \
            cause (hub.url, the hub's limits), then release the items: the daemon sends them within its next \
            round, `telestation sync` at once. Failed items waiting for a retry can be named to retry now. \
            Images recovery found without a queue record have no case id and are never released.
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(name: .customLong("all-held"), help: "Release every held item that has a case id.")
    var allHeld = false

    @Argument(help: ArgumentHelp("Item ids (see `telestation status`).", valueName: "id"))
    var ids: [Int64] = []

    func run() throws {
        do {
            guard allHeld != !ids.isEmpty else {
                throw CommandFailure(message: "name the item ids to release, or pass --all-held (see `telestation status`)", code: .usage)
            }
            let config = try options.load()
            let spool = try config.openSpool()
            let pending = try spool.status().pending
            var targets = ids
            if allHeld {
                targets = pending.filter { $0.state == .held && !$0.metadata.caseID.isEmpty }.map(\.id)
                if targets.isEmpty { print("no held items to release") }
            }
            var refused = 0
            for id in targets {
                if let item = pending.first(where: { $0.id == id }), item.metadata.caseID.isEmpty {
                    refused += 1
                    FileHandle.standardError.write(Data("telestation: item \(id) has no case id (recovery found it without a queue record); it is not released\n".utf8))
                    continue
                }
                do {
                    try spool.release(id: id)
                    print("item \(id): back in the upload queue")
                } catch {
                    refused += 1
                    FileHandle.standardError.write(Data("telestation: item \(id): \(error)\n".utf8))
                }
            }
            if refused > 0 { throw CommandFailure(message: "\(refused) item(s) not released", code: .dataError) }
        } catch {
            Self.report(error)
        }
    }
}
