import ArgumentParser
import Basics
import Config
import Dicom
import Foundation
import Spool
import Station

extension DicomImageType: ExpressibleByArgument {}

// Synchronous, like `status`: one read of the queue and one file.
struct DicomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dicom",
        abstract: "Write a queued image as the DICOM object the station would file, for inspection.",
        discussion: """
            Builds the Part 10 file (Dermoscopic Photography or VL Photographic, the camera's JPEG \
            encapsulated unchanged) from the item's image, its case, site, note and capture time, and the \
            [dicom] and [camera] configuration. Check it with `dciodvfy FILE.dcm` or `dcmdump FILE.dcm`. \
            Previews are not filed and have no object; an image deleted by retention has none either.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: ArgumentHelp("Item id (see `telestation status`).", valueName: "item"))
    var item: Int64

    @Option(name: .long, help: ArgumentHelp("Where to write the object.", valueName: "file.dcm"))
    var output: String

    @Option(name: .customLong("image-type"), help: ArgumentHelp("dermoscopic or clinical, instead of what the camera's configuration says.", valueName: "type"))
    var imageType: DicomImageType?

    func run() throws {
        do {
            let config = try options.load()
            let spool = try config.openSpool()
            let found: SpoolItem?
            do { found = try spool.item(id: item) } catch {
                throw CommandFailure(message: "cannot read the queue: \(error)", code: .ioError)
            }
            guard let found else {
                throw CommandFailure(message: "there is no item \(item) in the queue (see `telestation status`)", code: .noInput)
            }
            let bytes: [UInt8]
            do {
                bytes = try DicomItem.make(item: found, spool: spool, config: config, imageType: imageType)
            } catch {
                let code: ExitStatus = error.code == .notFound ? .noInput : .dataError
                throw CommandFailure(message: error.message + (error.nextStep.map { " — \($0)" } ?? ""), code: code)
            }
            guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                throw CommandFailure(message: "cannot write \(output)", code: .cannotCreate)
            }
            print("item \(item): \(bytes.count) bytes written to \(output)")
        } catch {
            Self.report(error)
        }
    }
}
