import Foundation

/// The answer to `GET <upload URL>/receipt`: whether the upload is filed
/// where the doctor will find it. The contract (README, "The hub"):
/// - 200 `{"state":"filed","where":"pacs"|"hub","filed_at",...}` — received;
///   "hub" when the hub files nothing in a PACS (no `--stow-url`) or the
///   upload is not DICOM: the hub's own verified copy is the filing;
/// - 202 `{"state":"pending","detail"}` — incomplete, or waiting for the PACS;
/// - 409 `{"state":"rejected","detail"}` — the hub will never file it;
/// - 404 — the hub does not know the upload: the station sends it again.
public struct Receipt: Sendable, Equatable {
    public var status: Int
    public var body: Body?

    public struct Body: Codable, Sendable, Equatable {
        public var state: String
        public var `where`: String?
        public var filedAt: String?
        public var sha256: String?
        public var studyUID: String?
        public var sopInstanceUID: String?
        public var detail: String?

        enum CodingKeys: String, CodingKey {
            case state, `where`, sha256, detail
            case filedAt = "filed_at", studyUID = "study_uid", sopInstanceUID = "sop_instance_uid"
        }
    }

    /// - Parameters:
    ///   - info: the upload's record (beside the file once stored), nil when unknown.
    ///   - offset: bytes received so far.
    ///   - forwarding: the hub runs with `--stow-url`.
    ///   - outage: the PACS's own failure, while every upload waits on it.
    public static func answer(_ info: UploadInfo?, offset: Int64, forwarding: Bool,
                              outage: PACSForwarder.LastError? = nil, now: Date = Date()) -> Receipt {
        guard let info else { return Receipt(status: 404, body: nil) }
        guard info.storedAs != nil else {
            if info.expiresAt < now { return Receipt(status: 404, body: nil) }
            return Receipt(status: 202, body: Body(state: "pending",
                                                   detail: "upload incomplete: \(offset) of \(info.length) bytes received"))
        }
        if let rejected = info.rejected {
            return Receipt(status: 409, body: Body(state: "rejected", detail: rejected))
        }
        func filed(_ place: String, _ at: Date) -> Receipt {
            Receipt(status: 200, body: Body(state: "filed", where: place, filedAt: HubDate.iso(at), sha256: info.sha256,
                                            studyUID: info.metadata["study_uid"],
                                            sopInstanceUID: info.metadata["sop_instance_uid"] ?? info.dicomSOPInstanceUID))
        }
        if let filedAt = info.filedAt { return filed("pacs", filedAt) }
        if !info.isDICOM || !forwarding { return filed("hub", info.completedAt ?? info.createdAt) }
        let detail: String
        // While the PACS itself fails, that is what every upload waits on,
        // whatever this one's last try said.
        if let outage {
            detail = "stored on the hub, not yet filed in the PACS: \(outage.message) (next try at \(HubDate.iso(outage.nextTry)))"
        } else if let error = info.pacsLastError {
            let next = info.pacsNextTry.map { ", next try at \(HubDate.iso($0))" } ?? ""
            detail = "stored on the hub, not yet filed in the PACS: \(error) (attempt \(info.pacsAttempts ?? 1)\(next))"
        } else {
            detail = "stored on the hub, waiting to be filed in the PACS"
        }
        return Receipt(status: 202, body: Body(state: "pending", detail: detail))
    }

    public func json() -> [UInt8] {
        guard let body else { return Array(#"{"state":"unknown","detail":"no such upload on this hub; send it again"}"#.utf8) }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(body)) ?? Data())
    }
}
