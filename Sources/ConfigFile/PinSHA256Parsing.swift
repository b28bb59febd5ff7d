import Config
import Foundation

extension PinSHA256 {
    /// A pin as stored: the 44-character base64 of a 32-byte SHA-256. A
    /// leading `sha256//` (curl's own notation) is accepted and dropped.
    static func normalize(_ text: String) throws(KeyProblem) -> String {
        var s = text.trimmingCharacters(in: .whitespaces)
        if s.lowercased().hasPrefix("sha256//") { s = String(s.dropFirst("sha256//".count)) }
        guard let digest = Data(base64Encoded: s), digest.count == 32 else {
            let shown = s.count > 60 ? String(s.prefix(60)) + "…" : s
            throw KeyProblem(message: "\"\(shown)\" is not a base64 SHA-256 hash (44 characters ending in =)",
                             fix: "compute the pin of the hub's key: \(command(host: "HUB", port: 443))")
        }
        return digest.base64EncodedString()
    }
}
