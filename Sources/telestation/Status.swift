import Basics
import ArgumentParser
import Config
import Foundation
import Spool

// Synchronous on purpose: opening and reading the queue blocks, and a plain
// command keeps that off Swift's cooperative pool.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the upload queue: counts, bytes pending, each pending item.",
        discussion: """
            --json prints an object with `counts` (per state), `bytes_pending`, `oldest_pending_age_s` \
            and `items`, one object per item not yet uploaded.
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Show one item and its history.", valueName: "id"))
    var item: Int64?

    func run() throws {
        do {
            let config = try options.load()
            FileHandle.standardOutput.write(try Self.render(config: config, json: json, itemID: item))
        } catch let error as SpoolError {
            Self.report(CommandFailure(message: error.description, code: error.code == .notFound ? .failure : .ioError))
        } catch {
            Self.report(error)
        }
    }

    static func render(config: StationConfig, json: Bool, itemID: Int64?) throws -> Data {
        // Reading the queue needs no key: a technician can run this without root.
        let spool = try Spool(config: config, purpose: .inspect)
        if let itemID {
            guard let item = try spool.item(id: itemID) else {
                throw SpoolError(.notFound, "no item \(itemID) in the queue", nextStep: "see `telestation status` for the ids")
            }
            let events = try spool.history(id: itemID)
            if json {
                let iso = ISO8601DateFormatter()
                let object: [String: Any] = [
                    "id": item.id, "state": item.state.rawValue, "case_id": item.metadata.caseID,
                    "sha256": item.sha256, "size": item.size, "acked_offset": item.ackedOffset,
                    "history": events.map { e -> [String: Any] in
                        ["at": iso.string(from: e.at), "from": e.from?.rawValue ?? NSNull(), "to": e.to.rawValue,
                         "detail": e.detail]
                    },
                ]
                var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                data.append(0x0A)
                return data
            }
            return Data(StatusReport.history(item, events).utf8)
        }
        let status = try spool.status()
        if json {
            var data = try StatusReport.jsonData(status)
            data.append(0x0A)
            return data
        }
        return Data(StatusReport.text(status).utf8)
    }
}
