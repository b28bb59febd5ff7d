import Foundation
import Testing
import TestSupport

/// `telestation dicom ITEM --output FILE.dcm` on a queued image: the object
/// passes dciodvfy and carries the enqueued JPEG byte for byte.
@Suite struct DicomCLITests {
    func tool(_ name: String) throws -> String {
        let path = "/usr/bin/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CLIToolMissing(description: "\(name) is not installed: run `make deps-test` (dicom3tools)")
        }
        return path
    }

    @Test func writesAValidObjectHoldingTheEnqueuedJPEG() throws {
        let d = try TempDir()
        let config = try PipelineTests().station(d, hub: nil, extra: """
            [dicom]
            enabled = true
            institution = "Red de Salud Quispicanchi"
            station_name = "PS Ccatca"
            """)
        let jpegPath = try PipelineTests().jpeg(d, config, name: "a.jpg")
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: jpegPath)))
        let q = try CLI.run(["enqueue", jpegPath, "--config", config, "--case", "40123456", "--site", "hand_right", "--note", "lesión en dorso de mano"])
        #expect(q.status == 0, "\(q.stderr)")

        for (type, sopClass) in [("clinical", "VLPhotographicImage"), ("dermoscopic", "DermoscopicPhotographyImage")] {
            let out = d.url.appendingPathComponent("item1-\(type).dcm").path
            let r = try CLI.run(["dicom", "1", "--output", out, "--image-type", type, "--config", config])
            #expect(r.status == 0, "\(r.stderr)")
            let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
            // The last fragment, before the 8-byte sequence delimiter, is the JPEG (plus one pad byte when odd).
            let padded = jpeg.count % 2 == 1 ? jpeg + [0] : jpeg
            #expect(file.count > padded.count + 8)
            #expect(Array(file[(file.count - 8 - padded.count)..<(file.count - 8)]) == padded, "the fragment is not the enqueued JPEG")
            let v = try ProcessRunner.run(try tool("dciodvfy"), ["-new", out])
            let output = v.stdout + v.stderr
            #expect(!output.split(separator: "\n").contains { $0.hasPrefix("Error") }, "dciodvfy:\n\(output)")
            #expect(output.contains(sopClass), "\(output)")
            let dump = try ProcessRunner.run(try tool("dcmdump"), ["+U8", out])
            #expect(dump.status == 0)
            #expect(dump.stdout.contains("[40123456]") && dump.stdout.contains("[PS Ccatca]") && dump.stdout.contains("Quispicanchi"), "\(dump.stdout)")
        }
    }

    @Test func refusesUnknownItemsPreviewsAndDeletedImages() throws {
        let d = try TempDir()
        let config = try PipelineTests().station(d, hub: nil)
        let jpegPath = try PipelineTests().jpeg(d, config, name: "a.jpg")
        #expect(try CLI.run(["enqueue", jpegPath, "--config", config, "--case", "40123456"]).status == 0)
        let out = d.url.appendingPathComponent("x.dcm").path

        let unknown = try CLI.run(["dicom", "99", "--output", out, "--config", config])
        #expect(unknown.status == 66 && unknown.stderr.contains("no item 99"), "\(unknown.stderr)")
        let preview = try CLI.run(["dicom", "2", "--output", out, "--config", config])
        #expect(preview.status == 65 && preview.stderr.contains("previews are not filed") && preview.stderr.contains("item 1"), "\(preview.stderr)")
        let badType = try CLI.run(["dicom", "1", "--output", out, "--image-type", "xray", "--config", config])
        #expect(badType.status == 64, "\(badType.stderr)")

        // Retention deletes an uploaded image's file and records when.
        let sqlite = try tool("sqlite3")
        let db = d.url.path + "/state/queue.sqlite"
        let u = try ProcessRunner.run(sqlite, [db, "UPDATE item SET file_deleted_at = 1767268800 WHERE id = 1"])
        #expect(u.status == 0, "\(u.stderr)")
        let deleted = try CLI.run(["dicom", "1", "--output", out, "--config", config])
        #expect(deleted.status == 66 && deleted.stderr.contains("deleted by retention"), "\(deleted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}

struct CLIToolMissing: Error, CustomStringConvertible { var description: String }
