import Basics
import ArgumentParser
import Config
import Foundation
import Spool
import Station
import Synchronization
import Uplink

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Upload everything pending now, in the foreground, with progress.",
        discussion: """
            Then asks a hub that gives receipts whether it filed what it received (--wait-receipts: keeps asking \
            that long). Exit status: 0 when the queue is empty, 75 (EX_TEMPFAIL) when items remain at the deadline \
            (or, with --wait-receipts, when receipts are still missing). Items held for a technician (see \
            `telestation status`) do not count as remaining.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: ArgumentHelp("Give up after this long, e.g. 10m; default: until done.", valueName: "duration"))
    var deadline: String?

    @Option(name: .customLong("wait-receipts"),
            help: ArgumentHelp("Keep asking the hub for receipts this long, e.g. 2m; default: ask once.", valueName: "duration"))
    var waitReceipts: String?

    func run() async throws {
        do {
            let config = try options.load()
            var until: Date? = nil
            if let deadline {
                guard let seconds = Units.parseDuration(deadline) else {
                    throw CommandFailure(message: "--deadline: \"\(deadline)\" is not a duration such as 90s, 10m or 2h", code: .usage)
                }
                until = Date().addingTimeInterval(seconds)
            }
            var receiptsUntil: Date? = nil
            if let waitReceipts {
                guard let seconds = Units.parseDuration(waitReceipts) else {
                    throw CommandFailure(message: "--wait-receipts: \"\(waitReceipts)\" is not a duration such as 90s, 10m or 2h", code: .usage)
                }
                receiptsUntil = Date().addingTimeInterval(seconds)
            }
            let spool = try config.openSpool()
            let worker = try config.makeUploadWorker(spool: spool)
            let display = ProgressDisplay(worker: worker, spool: spool, terminal: isatty(STDOUT_FILENO) != 0)
            let ticker = Task { await display.tick() }
            var empty = await worker.drain(deadline: until) { step in display.report(step) }
            ticker.cancel()
            display.finish()
            if empty {
                print("all uploaded: the queue is empty")
            }
            // Receipts: once, or until --wait-receipts runs out. An image the
            // hub lost goes back to the queue and is sent again here.
            var waiting = 0
            receipts: while await worker.client.hubGivesReceipts() == true {
                let round = await worker.checkReceipts()
                for id in round.received { print("item \(id): received, the hub filed it") }
                for id in round.held { print("item \(id): held for a technician: the hub refused to file it") }
                waiting = round.waiting.count
                if !round.resent.isEmpty {
                    for id in round.resent { print("item \(id): the hub lost it after its last byte; sending it again") }
                    empty = await worker.drain(deadline: until) { step in display.report(step) }
                    continue
                }
                guard waiting > 0, let receiptsUntil, Date() < receiptsUntil else { break receipts }
                try? await Task.sleep(for: .seconds(2))
            }
            if waiting > 0 {
                print("\(waiting) image(s) sent, not yet confirmed filed by the hub; the daemon keeps asking (telestation status)")
            }
            let remaining = await worker.pendingCount()
            if !empty {
                throw CommandFailure(message: "\(remaining) item(s) still pending at the deadline; they stay queued and upload later (telestation status)", code: .temporaryFailure)
            }
            if waiting > 0 && receiptsUntil != nil {
                throw CommandFailure(message: "\(waiting) receipt(s) still missing after --wait-receipts \(waitReceipts ?? "")", code: .temporaryFailure)
            }
        } catch {
            Self.report(error)
        }
    }
}

/// Progress of `telestation sync`: a redrawn bar on a terminal, plain lines otherwise.
final class ProgressDisplay: Sendable {
    let worker: UploadWorker
    let spool: Spool
    let terminal: Bool
    private let last = Mutex<(id: Int64, decile: Int)?>(nil)

    init(worker: UploadWorker, spool: Spool, terminal: Bool) {
        self.worker = worker
        self.spool = spool
        self.terminal = terminal
    }

    func tick() async {
        while !Task.isCancelled {
            draw()
            try? await Task.sleep(for: .milliseconds(terminal ? 250 : 1000))
        }
    }

    func draw() {
        guard let current = worker.current else { return }
        let status = worker.client.status
        let rate = status.link.throughput ?? 0
        let fraction = current.size == 0 ? 1 : Double(current.offset) / Double(current.size)
        let eta = rate > 0 ? Units.formatDuration(Double(current.size - current.offset) / rate) : "?"
        let rateText = rate > 0 ? "\(Units.formatBytes(Int64(rate)))/s" : "waiting for the link"
        if terminal {
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(format: "item %lld %@ %3d%%  %@ of %@  %@  ETA %@", current.id, bar, Int(fraction * 100),
                              Units.formatBytes(current.offset), Units.formatBytes(current.size), rateText, eta)
            FileHandle.standardOutput.write(Data("\r\u{1B}[K\(line)".utf8))
        } else {
            let decile = Int(fraction * 10)
            let changed = last.withLock { l -> Bool in
                if let l, l.id == current.id, l.decile == decile { return false }
                l = (current.id, decile)
                return true
            }
            if changed {
                print("item \(current.id): \(Int(fraction * 100))% (\(Units.formatBytes(current.offset)) of \(Units.formatBytes(current.size))), \(rateText), ETA \(eta)")
            }
        }
    }

    func report(_ step: UploadWorker.Step) {
        let line: String
        switch step {
        case let .uploaded(id): line = "item \(id): uploaded, the hub confirmed every byte"
        case let .willRetry(id, at, reason): line = "item \(id): \(reason); retry at \(Self.time(at))"
        case let .held(id, reason): line = "item \(id): held for a technician: \(reason)"
        case .idle, .stopped: return
        }
        if terminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        print(line)
    }

    func finish() {
        if terminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func time(_ date: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss"
        return f.string(from: date)
    }
}
