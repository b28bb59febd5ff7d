import Foundation

/// Parsers for the human units the configuration accepts: sizes (`64KiB`),
/// durations (`30s`, `1h30m`) and rates (`64kbit`, `16KiB/s`).
public enum Units {
    private static let sizeUnits: [String: Int64] = [
        "": 1, "b": 1,
        "k": 1000, "kb": 1000, "m": 1_000_000, "mb": 1_000_000, "g": 1_000_000_000, "gb": 1_000_000_000,
        "kib": 1024, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    ]

    /// Bytes in a size such as `512`, `64KiB`, `4MiB` or `1.5GB`.
    public static func parseSize(_ text: String) -> Int64? {
        guard let (number, unit) = split(text), let factor = sizeUnits[unit.lowercased()] else { return nil }
        let value = number * Double(factor)
        guard value >= 0, value < 9e18, value.rounded() == value || factor > 1 else { return nil }
        return Int64(value.rounded())
    }

    /// Seconds in a duration such as `30s`, `5m`, `1h30m`, `7d` or `250ms`.
    public static func parseDuration(_ text: String) -> Double? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let numberEnd = rest.firstIndex(where: { !($0.isNumber || $0 == ".") }) ?? rest.endIndex
            guard numberEnd != rest.startIndex, let number = Double(rest[..<numberEnd]) else { return nil }
            rest = rest[numberEnd...]
            let unitEnd = rest.firstIndex(where: { $0.isNumber }) ?? rest.endIndex
            let unit = rest[..<unitEnd].lowercased()
            rest = rest[unitEnd...]
            let factor: Double
            switch unit {
            case "ms": factor = 0.001
            case "s", "sec": factor = 1
            case "m", "min": factor = 60
            case "h": factor = 3600
            case "d": factor = 86400
            case "w": factor = 7 * 86400
            default: return nil
            }
            total += number * factor
        }
        return total
    }

    /// Bytes per second in a rate such as `64kbit`, `2Mbit`, `16KiB/s` or `1MB/s`.
    /// `unlimited` and `0` mean no limit and return 0.
    public static func parseRate(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.lowercased() == "unlimited" || t == "0" { return 0 }
        guard let (number, rawUnit) = split(t) else { return nil }
        var unit = rawUnit.lowercased()
        if unit.hasSuffix("/s") { unit.removeLast(2) } else if unit.hasSuffix("bps") { unit.removeLast(3); unit += "bit" }
        let bits: [String: Double] = ["bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9]
        if let f = bits[unit] { return Int64((number * f / 8).rounded()) }
        guard !unit.isEmpty, let f = sizeUnits[unit] else { return nil }
        return Int64((number * Double(f)).rounded())
    }

    private static func split(_ text: String) -> (Double, String)? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let end = t.firstIndex(where: { !($0.isNumber || $0 == ".") }) ?? t.endIndex
        guard end != t.startIndex, let number = Double(t[..<end]) else { return nil }
        return (number, String(t[end...]).trimmingCharacters(in: .whitespaces))
    }

    /// `4.1 MB`-style rendering for people (decimal units, as network rates are).
    public static func formatBytes(_ bytes: Int64) -> String {
        let b = Double(bytes)
        if b < 1000 { return "\(bytes) B" }
        if b < 1e6 { return String(format: "%.1f KB", b / 1e3) }
        if b < 1e9 { return String(format: "%.1f MB", b / 1e6) }
        return String(format: "%.2f GB", b / 1e9)
    }

    /// `1h 05m`-style rendering of a duration.
    public static func formatDuration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(String(format: "%02d", s % 60))s" }
        if s < 86400 { return "\(s / 3600)h \(String(format: "%02d", (s % 3600) / 60))m" }
        return "\(s / 86400)d \(String(format: "%02d", (s % 86400) / 3600))h"
    }
}
