import Foundation

extension CaptureRequestValidator {
    /// `PUT /api/v1/camera/controls/{name}` with `{"value": N}`: the control's
    /// name and the integer to set (`true`/`false` stand for 1/0, as for
    /// on/off controls), or a one-line refusal saying what to send.
    public static func cameraControl(name: String, json body: Data) throws(StationError) -> (name: String, value: Int) {
        let usage = #"send {"value": <integer>}, e.g. {"value": 140}; true and false are accepted for on/off controls"#
        guard name.range(of: "^[a-z0-9_]{1,64}$", options: .regularExpression) != nil else {
            throw StationError(.badRequest, "\"\(name.prefix(64))\" is not a control name",
                               nextStep: "use a name from GET /api/v1/camera/controls, e.g. brightness")
        }
        guard body.count <= maxBodyBytes else {
            throw StationError(.payloadTooLarge, "the request body is larger than \(maxBodyBytes) bytes", nextStep: usage)
        }
        enum Value: Decodable {
            case number(Int), flag(Bool)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                // JSONDecoder refuses 1.5 and true for an Int, so each case is exact.
                if let n = try? c.decode(Int.self) { self = .number(n) } else { self = .flag(try c.decode(Bool.self)) }
            }
        }
        let fields: [String: Value]
        do {
            fields = try JSONDecoder().decode([String: Value].self, from: body)
        } catch {
            throw StationError(.badRequest, "the request body must be a JSON object with an integer value", nextStep: usage)
        }
        let unknown = fields.keys.filter { $0 != "value" }.sorted()
        guard unknown.isEmpty else {
            throw StationError(.badRequest, "unknown field \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) in the request", nextStep: usage)
        }
        switch fields["value"] {
        case .number(let n)?: return (name, n)
        case .flag(let b)?: return (name, b ? 1 : 0)
        case nil: throw StationError(.badRequest, "the request has no value", nextStep: usage)
        }
    }
}
