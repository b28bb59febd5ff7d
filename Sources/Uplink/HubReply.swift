import Foundation

/// A reply about one of the station's cases, as the hub's replies endpoint
/// sends it (`GET /replies?since=ID`: `{"replies": [...]}`, oldest first).
public struct HubReply: Codable, Sendable, Equatable {
    public var id: Int
    public var caseID: String
    /// `received`, `retake` or `note`.
    public var kind: String
    /// For a retake: which image of the case (1-based).
    public var image: Int?
    public var text: String
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case id, kind, image, text, at
        case caseID = "case"
    }

    public init(id: Int, caseID: String, kind: String, image: Int?, text: String, at: Date) {
        self.id = id
        self.caseID = caseID
        self.kind = kind
        self.image = image
        self.text = text
        self.at = at
    }

    /// Reads the endpoint's answer; replies of a kind this station does not
    /// know are kept as notes, so a newer hub's reply is still shown.
    public static func parse(_ body: [UInt8]) -> Result<[HubReply], UplinkError> {
        struct Answer: Decodable { var replies: [HubReply] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return .success(try decoder.decode(Answer.self, from: Data(body)).replies.map { r in
                var r = r
                if !["received", "retake", "note"].contains(r.kind) { r.kind = "note" }
                r.text = String(r.text.prefix(2000))
                return r
            })
        } catch {
            return .failure(UplinkError(.protocolViolation, "the hub's replies are not the expected JSON: \(error)"))
        }
    }
}
