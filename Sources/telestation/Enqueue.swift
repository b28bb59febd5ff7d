import Basics
import ArgumentParser
import Config
import Foundation
import Imaging
import Spool
import Station

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Queue existing JPEG files for upload.",
        discussion: "Each file is checked to be a JPEG, copied into the queue crash-safely with a preview for early triage, and its new item id printed. Files that are not JPEGs are refused and nothing of them is queued.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: ArgumentHelp("JPEG files to queue.", valueName: "file"))
    var files: [String]

    @Option(name: .customLong("case"), help: ArgumentHelp("Case id: DNI (8 digits), historia clínica or CE number.", valueName: "id"))
    var caseID: String

    @Option(help: ArgumentHelp("Body site: \(BodySite.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "site"))
    var site: String = BodySite.other.rawValue

    @Option(help: "A short note for the specialist.")
    var note: String = ""

    @Option(help: "urgent or routine.")
    var priority: Priority = .routine

    @Option(name: .customLong("patient-name"),
            help: ArgumentHelp("The patient's name as SURNAMES^Given names, e.g. \"MAMANI QUISPE^Rosa\".", valueName: "name"))
    var patientName: String?

    @Option(help: ArgumentHelp("The patient's sex: F, M or O.", valueName: "sex"))
    var sex: String?

    @Option(name: .customLong("birth-date"), help: ArgumentHelp("The patient's birth date, YYYY-MM-DD.", valueName: "date"))
    var birthDate: String?

    @Option(name: .customLong("image-type"),
            help: ArgumentHelp("dermoscopic or clinical; default: what the camera profile says.", valueName: "type"))
    var imageType: String?

    func run() async throws {
        do {
            let config = try options.load()
            let caseID = try validatedCaseID(caseID)
            guard BodySite(rawValue: site) != nil else {
                throw CommandFailure(message: "--site: unknown body site \"\(site)\"; use one of \(BodySite.allCases.map(\.rawValue).joined(separator: ", "))", code: .usage)
            }
            let context = try patientContext()
            let spool = try config.openSpool()
            var refused = 0
            for file in files {
                do {
                    let result = try enqueue(file, caseID: caseID, config: config, spool: spool, context: context)
                    print(result)
                } catch let failure as CommandFailure {
                    refused += 1
                    FileHandle.standardError.write(Data("telestation: \(failure.message)\n".utf8))
                }
            }
            if refused > 0 {
                throw CommandFailure(message: "\(refused) of \(files.count) file(s) refused; the others are queued", code: .dataError)
            }
        } catch {
            Self.report(error)
        }
    }

    /// What the options say about the patient and the image, checked.
    func patientContext() throws -> CaptureContext? {
        var c = CaptureContext(clockSynchronized: ClockSync.isSynchronized())
        if let name = patientName?.trimmingCharacters(in: .whitespaces), !name.isEmpty {
            // DICOM person names: at most 64 characters, no backslash (the value separator).
            guard name.count <= 64, !name.contains("\\"), !name.contains(where: \.isNewline) else {
                throw CommandFailure(message: "--patient-name: at most 64 characters, without backslashes or line breaks", code: .usage)
            }
            c.patientName = name
        }
        if let sex {
            guard ["F", "M", "O"].contains(sex.uppercased()) else {
                throw CommandFailure(message: "--sex: \"\(sex)\" is not F, M or O", code: .usage)
            }
            c.patientSex = sex.uppercased()
        }
        if let birthDate {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyy-MM-dd"
            guard birthDate.count == 10, let date = f.date(from: birthDate), date <= Date() else {
                throw CommandFailure(message: "--birth-date: \"\(birthDate)\" is not a past date written YYYY-MM-DD", code: .usage)
            }
            c.patientBirthDate = birthDate.replacingOccurrences(of: "-", with: "")
        }
        if let imageType {
            guard ["dermoscopic", "clinical"].contains(imageType) else {
                throw CommandFailure(message: "--image-type: \"\(imageType)\" is not dermoscopic or clinical", code: .usage)
            }
            c.imageType = imageType
        }
        return c
    }

    func enqueue(_ file: String, caseID: String, config: StationConfig, spool: Spool,
                 context: CaptureContext? = nil) throws -> String {
        let url = URL(fileURLWithPath: file)
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CommandFailure(message: "\(file): cannot read it: \((error as NSError).localizedDescription)", code: .noInput)
        }
        let info: JPEGInfo
        let preview: Data
        do {
            info = try JPEG.validate(data)
            preview = try Preview.make(fromJPEG: data, width: config.camera.previewWidth)
        } catch {
            throw CommandFailure(message: "\(file): not queued: \(error)", code: .dataError)
        }
        let capturedAt = (try? FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date) ?? Date()
        let metadata = ItemMetadata(caseID: caseID, site: site, note: note, priority: priority, capturedAt: capturedAt,
                                    filename: url.lastPathComponent, context: context)
        let result: EnqueueResult
        do {
            result = try spool.enqueue(imageFile: url, preview: preview, metadata: metadata)
        } catch {
            throw CommandFailure(message: "\(file): not queued: \(error)", code: .cannotCreate)
        }
        let what = "\(file): \(info.width)x\(info.height), \(Units.formatBytes(result.size))"
        if result.alreadyQueued {
            return "\(what): already queued as item \(result.imageID) (same sha256), not queued twice"
        }
        return "\(what): queued as item \(result.imageID)" + (result.previewID.map { ", preview item \($0)" } ?? "")
    }
}

extension Priority: ExpressibleByArgument {}
