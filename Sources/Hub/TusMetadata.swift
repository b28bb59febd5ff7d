import Foundation

/// The `Upload-Metadata` header: comma-separated `key base64value` pairs.
public enum TusMetadata {
    /// Parses the header, or says what is wrong with it.
    public struct Invalid: Error, Equatable, Sendable { public var message: String }

    public static func parse(_ header: String) -> Result<[String: String], Invalid> {
        var result: [String: String] = [:]
        for part in header.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.isEmpty { continue }
            let pieces = pair.split(separator: " ", omittingEmptySubsequences: true)
            guard pieces.count <= 2, let key = pieces.first.map(String.init), !key.isEmpty,
                  key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0 != "," }) else {
                return .failure(Invalid(message: "Upload-Metadata has a malformed pair: \(pair.prefix(60))"))
            }
            guard result[key] == nil else { return .failure(Invalid(message: "Upload-Metadata repeats the key \(key)")) }
            if pieces.count == 1 { result[key] = ""; continue }
            // Decoded byte for byte: String(data:encoding:) would drop a leading byte order mark.
            guard let data = Data(base64Encoded: String(pieces[1])),
                  case let value = String(decoding: data, as: UTF8.self), value.utf8.elementsEqual(data) else {
                return .failure(Invalid(message: "Upload-Metadata value of \(key) is not base64-encoded UTF-8"))
            }
            result[key] = value
        }
        return .success(result)
    }

    /// Encodes pairs in key order.
    public static func encode(_ pairs: [String: String]) -> String {
        pairs.sorted { $0.key < $1.key }.map { k, v in
            v.isEmpty ? k : "\(k) \(Data(v.utf8).base64EncodedString())"
        }.joined(separator: ",")
    }
}
