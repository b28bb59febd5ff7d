import Basics
import Config
import Dicom
import Foundation
import Spool

/// The one place a queued item becomes a DICOM object: `telestation dicom`
/// and the upload path (`transform`) both use it, so the object a
/// technician inspects is the one the hub receives.
public enum DicomItem {
    /// Software Versions (0018,1020); the Makefile's VERSION.
    public static let softwareVersion = "telestation 0.1.0"

    /// The object's context, from the item (case, site, note, capture
    /// time, digest), what the capture stored with it (device, clock,
    /// patient; `stored` replaces it, for tests) and the configuration
    /// ([dicom], the camera keys); `imageType` overrides them all.
    public static func context(for item: SpoolItem, config: StationConfig, stored: CaptureContext? = nil,
                               imageType: DicomImageType? = nil) throws(StationError) -> DicomContext {
        let stored = stored ?? item.metadata.context
        guard item.kind == .image else {
            throw StationError(.badRequest, "item \(item.id) is a preview; previews are not filed as DICOM objects, only their images",
                               nextStep: item.parentID.map { "use its image, item \($0)" } ?? "use the image item")
        }
        guard !item.metadata.caseID.isEmpty else {
            throw StationError(.badRequest, "item \(item.id) has no case id (recovery found it without a queue record), so it has no patient to file it under")
        }
        let camera = config.camera
        let configured: DicomImageType = camera.imageType == .dermoscopic ? .dermoscopic : .clinical
        return DicomContext(
            imageType: imageType ?? stored?.imageType.flatMap(DicomImageType.init(rawValue:)) ?? configured,
            stationID: config.station.id, stationName: config.dicom.stationName ?? config.station.id,
            institution: config.dicom.institution, caseID: item.metadata.caseID,
            patientName: stored?.patientName, patientSex: stored?.patientSex, patientBirthDate: stored?.patientBirthDate,
            site: item.metadata.site.isEmpty ? "other" : item.metadata.site, note: item.metadata.note,
            capturedAt: item.metadata.capturedAt, clockSynchronized: stored?.clockSynchronized,
            manufacturer: stored?.manufacturer, model: stored?.model, serial: stored?.serial,
            polarized: stored?.polarized ?? camera.polarized, contact: stored?.contact ?? camera.contact,
            softwareVersion: softwareVersion, imageSHA256: item.sha256,
            patientAge: stored?.patientAge, caseUID: stored?.caseUID)
    }

    /// The whole Part 10 file for a queued image: its JPEG read (and
    /// decrypted) from the spool, checked against the item's digest.
    public static func make(item: SpoolItem, spool: Spool, config: StationConfig, stored: CaptureContext? = nil,
                            imageType: DicomImageType? = nil) throws(StationError) -> [UInt8] {
        try object(item: item, spool: spool, config: config, stored: stored, imageType: imageType).bytes
    }

    /// The object and where the camera's JPEG lies in it (the encapsulated
    /// fragment, byte for byte; nil if it could not be found there).
    static func object(item: SpoolItem, spool: Spool, config: StationConfig, stored: CaptureContext? = nil,
                       imageType: DicomImageType? = nil) throws(StationError) -> (bytes: [UInt8], jpegRange: Range<Int>?) {
        let context = try context(for: item, config: config, stored: stored, imageType: imageType)
        let jpeg = try jpeg(of: item, spool: spool)
        let bytes: [UInt8]
        do {
            bytes = try DicomObject.make(jpeg: jpeg, context: context)
        } catch {
            throw StationError(.badRequest, "item \(item.id): \(error.message)", nextStep: error.nextStep)
        }
        return (bytes, fragmentRange(of: jpeg, in: bytes))
    }

    /// The pixel data is the object's last element: the fragment (the JPEG,
    /// padded to even length) and the 8-byte sequence delimiter follow.
    static func fragmentRange(of jpeg: [UInt8], in object: [UInt8]) -> Range<Int>? {
        let start = object.count - 8 - jpeg.count - jpeg.count % 2
        guard start >= 0, object[start..<(start + jpeg.count)].elementsEqual(jpeg) else { return nil }
        return start..<(start + jpeg.count)
    }

    /// What the upload worker sends for an image when `dicom.enabled`: the
    /// object, named like the image with `.dcm`, with its UIDs for the hub.
    /// Previews stay JPEG files (they are for triage, not for the record).
    public static func transform(config: StationConfig) -> UploadWorker.Transform? {
        guard config.dicom.enabled else { return nil }
        return { item, spool in
            guard item.kind == .image else { return nil }
            let context = try context(for: item, config: config)
            let made = try object(item: item, spool: spool, config: config)
            let uids = DicomObject.uids(for: context)
            let stem = (item.metadata.filename as NSString).deletingPathExtension
            return UploadWorker.Prepared(bytes: made.bytes, filename: stem + ".dcm", filetype: "application/dicom",
                                         extra: [("study_uid", uids.study), ("sop_instance_uid", uids.instance)],
                                         jpegRange: made.jpegRange)
        }
    }

    /// The item's JPEG, read (and decrypted) from the spool and checked against its digest.
    static func jpeg(of item: SpoolItem, spool: Spool) throws(StationError) -> [UInt8] {
        guard item.fileDeletedAt == nil else {
            throw StationError(.notFound, "the image of item \(item.id) was deleted by retention after its upload (spool.keep_uploaded); there is nothing to build the object from",
                               nextStep: "the hub holds the image; keep images longer with spool.keep_uploaded")
        }
        let jpeg: [UInt8]
        let digest: String
        do {
            let reader = try spool.openFile(item)
            jpeg = try reader.read(at: 0, count: Int(item.size))
            digest = try reader.sha256()
        } catch {
            throw StationError(.notFound, "the image of item \(item.id) cannot be read: \(error)",
                               nextStep: "run `telestation diagnose`; the spool file may be missing or damaged")
        }
        // The instance UID is named by the digest: it must be this file's.
        guard digest == item.sha256, jpeg.count == Int(item.size) else {
            throw StationError(.conflict, "the image of item \(item.id) does not match its recorded SHA-256", nextStep: "run `telestation diagnose`")
        }
        return jpeg
    }
}
