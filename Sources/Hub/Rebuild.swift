import Basics
import Foundation
import Recompression
#if canImport(Glibc)
import Glibc
#endif

/// Uploads the station sent recompressed (`RecompressedFile`): checked when
/// created, rebuilt into the original file when complete. The stored file
/// is the original, checked against the `sha256` the station declared, so
/// everything after (records, receipts, PACS filing) sees what the camera made.
enum Rebuild {
    static func isRecompressed(_ metadata: [String: String]) -> Bool {
        metadata[RecompressedFile.transportKey] != nil
    }

    /// Why an upload's creation is refused, nil when its transport metadata is fine.
    static func refusal(metadata: [String: String], uploadLength: Int64, maxSize: Int64) -> String? {
        guard let transport = metadata[RecompressedFile.transportKey] else { return nil }
        guard transport == RecompressedFile.capability else {
            return "metadata transport \"\(transport)\" is not one this hub rebuilds (it rebuilds \"\(RecompressedFile.capability)\")"
        }
        guard metadata["sha256"] != nil else {
            return "a recompressed upload needs the original file's sha256 in its metadata"
        }
        guard let raw = metadata[RecompressedFile.originalLengthKey], let original = Int64(raw), original > 0 else {
            return "a recompressed upload needs original_length, a positive integer"
        }
        guard original <= maxSize, original <= Int64(JPEGXL.Limits().maxBytes) else {
            return "original_length \(original) exceeds what this hub rebuilds (\(min(maxSize, Int64(JPEGXL.Limits().maxBytes))) bytes)"
        }
        if let sha = metadata[RecompressedFile.transportSHA256Key], !(sha.count == 64 && sha.allSatisfy(\.isHexDigit)) {
            return "metadata transport_sha256 must be 64 hex digits"
        }
        return nil
    }

    enum Outcome {
        /// Written to the destination; its SHA-256 and length, from the bytes written.
        case rebuilt(sha256: String, length: Int64)
        /// Why the original cannot be rebuilt.
        case refused(String)
    }

    /// Rebuilds the original from the complete body at `part` and writes it
    /// durably to `destination`.
    static func run(part: String, metadata: [String: String], destination: String) throws(HubError) -> Outcome {
        guard let original = metadata[RecompressedFile.originalLengthKey].flatMap(Int.init) else {
            return .refused("the upload has no original_length")
        }
        guard let data = FileManager.default.contents(atPath: part) else {
            throw HubError(.storage, "cannot read the complete upload \(part)")
        }
        let body = [UInt8](data)
        if let declared = metadata[RecompressedFile.transportSHA256Key]?.lowercased() {
            let actual = Digest.sha256Hex(body)
            guard actual == declared else { return .refused("the body's sha256 is \(actual), transport_sha256 says \(declared)") }
        }
        let rebuilt: [UInt8]
        do {
            rebuilt = try RecompressedFile.parse(body).rebuild(length: original)
        } catch {
            return .refused(error.message)
        }
        let tmp = destination + ".rebuilding"
        let fd = try HubStore.call("open", tmp) { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        do throws(HubError) {
            defer { close(fd) }
            do throws(SystemCallError) { try Syscall.writeAll(fd, rebuilt, path: tmp) } catch { throw HubError.posix(error) }
            try HubStore.call("fsync", tmp) { fsync(fd) }
        } catch {
            unlink(tmp)
            throw error
        }
        try HubStore.call("rename", tmp) { rename(tmp, destination) }
        return .rebuilt(sha256: Digest.sha256Hex(rebuilt), length: Int64(rebuilt.count))
    }
}
