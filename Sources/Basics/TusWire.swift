import Foundation

/// The pieces of the tus wire format both ends of an upload speak: the
/// station's client and the hub. Written once so they cannot drift apart.
public enum TusWire {
    /// The `Upload-Metadata` header: `key base64(value)` pairs, comma-separated,
    /// in the given order; an empty value is sent as the bare key.
    public static func encodeMetadata(_ pairs: [(String, String)]) -> String {
        pairs.map { key, value in
            value.isEmpty ? key : "\(key) \(Data(value.utf8).base64EncodedString())"
        }.joined(separator: ",")
    }

    /// Why an `Upload-Metadata` header cannot be read.
    public struct InvalidMetadata: Error, Equatable, Sendable { public var message: String }

    public static func parseMetadata(_ header: String) -> Result<[String: String], InvalidMetadata> {
        var result: [String: String] = [:]
        for part in header.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.isEmpty { continue }
            let pieces = pair.split(separator: " ", omittingEmptySubsequences: true)
            guard pieces.count <= 2, let key = pieces.first.map(String.init), !key.isEmpty,
                  key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0 != "," }) else {
                return .failure(InvalidMetadata(message: "Upload-Metadata has a malformed pair: \(pair.prefix(60))"))
            }
            guard result[key] == nil else { return .failure(InvalidMetadata(message: "Upload-Metadata repeats the key \(key)")) }
            if pieces.count == 1 { result[key] = ""; continue }
            // Decoded byte for byte: String(data:encoding:) would drop a leading byte order mark.
            guard let data = Data(base64Encoded: String(pieces[1])),
                  case let value = String(decoding: data, as: UTF8.self), value.utf8.elementsEqual(data) else {
                return .failure(InvalidMetadata(message: "Upload-Metadata value of \(key) is not base64-encoded UTF-8"))
            }
            result[key] = value
        }
        return .success(result)
    }
}

/// RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as used by
/// `Retry-After`, `Upload-Expires` and `Date`.
public enum HTTPDate {
    private static func formatter() -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f
    }

    public static func format(_ date: Date) -> String {
        formatter().string(from: date)
    }

    public static func parse(_ s: String) -> Date? {
        let t = s.trimmingCharacters(in: .whitespaces)
        // The format is printable ASCII; Foundation's DateFormatter traps
        // (kills the process) on some other text, e.g. a combining mark.
        guard !t.isEmpty, t.utf8.count < 64, t.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return nil }
        return formatter().date(from: t)
    }
}
