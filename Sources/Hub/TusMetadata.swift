import Basics

/// The `Upload-Metadata` header as the hub reads and echoes it; the format
/// itself is `TusWire`'s, shared with the station's client.
public enum TusMetadata {
    public typealias Invalid = TusWire.InvalidMetadata

    public static func parse(_ header: String) -> Result<[String: String], Invalid> {
        TusWire.parseMetadata(header)
    }

    /// Encodes pairs in key order.
    public static func encode(_ pairs: [String: String]) -> String {
        TusWire.encodeMetadata(pairs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}
