import Foundation

/// The hub's word on an uploaded image: whether it is filed where the
/// doctor will find it. A hub that offers receipts says so in its OPTIONS
/// answer (`Telestation-Receipts: 1`) and answers `GET <upload URL>/receipt`:
///
/// - `200 {"state":"filed","where":"pacs"|"hub",...}`: filed (in the PACS,
///   or in the hub's own verified store when it has no PACS);
/// - `202 {"state":"pending","detail":...}`: every byte arrived but filing
///   has not succeeded yet (the PACS is down or refusing; the hub retries);
/// - `409 {"state":"rejected","detail":...}`: the hub will never file it;
/// - `404`/`410`: the hub does not know the upload (it lost it).
///
/// A plain tus server offers no receipts; the station then reports its
/// uploads as "sent, no receipt".
public enum Receipt: Sendable, Equatable {
    case filed(where: String, detail: String)
    case pending(detail: String)
    case rejected(detail: String)
    /// The hub does not know the upload: send the image again.
    case unknownUpload
    /// No usable answer (network, 5xx, 401/403, a malformed body): ask again later.
    case unavailable(reason: String)

    /// Interprets the answer to `GET <upload URL>/receipt`.
    public static func parse(_ r: TusResponse) -> Receipt {
        let object = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
        let state = object?["state"] as? String
        let detail = (object?["detail"] as? String).map { String($0.prefix(300)) }
        switch r.status {
        case 200:
            guard state == "filed" else {
                return .unavailable(reason: "the hub answered 200 without \"state\": \"filed\"")
            }
            let place = (object?["where"] as? String) ?? "hub"
            var parts = ["filed in the \(place == "pacs" ? "PACS" : "hub's store")"]
            if let at = object?["filed_at"] as? String { parts.append("at \(at)") }
            if let uid = object?["sop_instance_uid"] as? String { parts.append("as \(uid.prefix(70))") }
            return .filed(where: place, detail: parts.joined(separator: " "))
        case 202:
            return .pending(detail: detail ?? "the hub has not filed it yet")
        case 409:
            return .rejected(detail: detail ?? "the hub refused to file it")
        case 404, 410:
            return .unknownUpload
        default:
            return .unavailable(reason: "the hub answered \(r.status) to a receipt request")
        }
    }
}
