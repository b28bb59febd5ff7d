import Basics
import Foundation

/// A case as the hub holds it: the images a station sent together from its
/// kiosk (metadata `case_uid`), with the patient, history and consent they
/// carry. Images enqueued one by one (no `case_uid`) group by station and
/// case id. `GET /cases` serves these to the operators and the specialist's side.
public struct HubCase: Codable, Sendable, Equatable {
    public struct Image: Codable, Sendable, Equatable {
        /// Place in the case, 1-based: the N of a "retake image N" reply.
        public var index: Int?
        public var role: String?
        public var site: String
        public var aspect: String?
        public var filename: String
        public var storedAs: String
        public var sha256: String?
        public var capturedAt: String?
        /// The DICOM study the image's object belongs to, when it travelled as DICOM.
        public var studyUID: String?

        enum CodingKeys: String, CodingKey {
            case index, role, site, aspect, filename, storedAs = "stored_as", sha256, capturedAt = "captured_at", studyUID = "study_uid"
        }
    }

    public var station: String
    public var caseID: String
    public var caseUID: String?
    public var patientName: String?
    public var patientSex: String?
    public var patientAge: String?
    public var priority: String?
    public var note: String?
    /// The history as the station sent it, nil when none.
    public var history: CaseHistory?
    public var consent: String?
    /// How many images the station sent in the case; nil for images sent one by one.
    public var imagesExpected: Int?
    public var images: [Image]

    /// Every image the station said the case holds has arrived.
    public var complete: Bool

    enum CodingKeys: String, CodingKey {
        case station, caseID = "case", caseUID = "case_uid", patientName = "patient_name", patientSex = "patient_sex"
        case patientAge = "patient_age", priority, note, history, consent, imagesExpected = "images_expected", images, complete
    }

    init(station: String, caseID: String, caseUID: String?) {
        self.station = station
        self.caseID = caseID
        self.caseUID = caseUID
        self.images = []
        self.complete = true
    }

    /// The cases in a set of stored uploads, newest first: images only (not
    /// previews, health reports or second copies), each case's images in
    /// the station's order.
    public static func group(_ records: [UploadInfo], station: String? = nil) -> [HubCase] {
        var cases: [String: HubCase] = [:]
        var newest: [String: Date] = [:]
        for info in records where info.duplicateOf == nil {
            let m = info.metadata
            guard let storedAs = info.storedAs, (m["kind"] ?? "image") == "image",
                  let from = m["station"], !from.isEmpty, station == nil || from == station,
                  let caseID = m["case"], !caseID.isEmpty else { continue }
            let uid = m["case_uid"].flatMap { $0.isEmpty ? nil : $0 }
            let key = from + "\u{0}" + (uid ?? "case:" + caseID)
            var c = cases[key] ?? HubCase(station: from, caseID: caseID, caseUID: uid)
            c.patientName = c.patientName ?? m["patient_name"]
            c.patientSex = c.patientSex ?? m["patient_sex"]
            c.patientAge = c.patientAge ?? m["patient_age"]
            c.priority = c.priority ?? m["priority"]
            if let note = m["note"], !note.isEmpty { c.note = c.note ?? note }
            if c.history == nil, let h = m["history"], let parsed = try? JSONDecoder().decode(CaseHistory.self, from: Data(h.utf8)) {
                c.history = parsed
            }
            c.consent = c.consent ?? m["consent"]
            if let n = m["images_in_case"].flatMap(Int.init) { c.imagesExpected = n }
            c.images.append(Image(index: m["image_index"].flatMap(Int.init), role: m["role"], site: m["site"] ?? "",
                                  aspect: m["aspect"], filename: m["filename"] ?? storedAs, storedAs: storedAs,
                                  sha256: info.sha256, capturedAt: m["captured_at"], studyUID: m["study_uid"]))
            cases[key] = c
            newest[key] = max(newest[key] ?? .distantPast, info.completedAt ?? info.createdAt)
        }
        return cases.map { key, value in
            var c = value
            c.images.sort { ($0.index ?? Int.max, $0.capturedAt ?? "") < ($1.index ?? Int.max, $1.capturedAt ?? "") }
            c.complete = c.imagesExpected.map { c.images.count >= $0 } ?? true
            return (newest[key] ?? .distantPast, c)
        }
        .sorted { $0.0 > $1.0 }
        .map(\.1)
    }
}
