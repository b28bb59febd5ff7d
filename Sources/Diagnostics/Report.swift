import Foundation

/// The whole diagnosis: rendered as a table for people or JSON for tools.
public struct DiagnosticReport: Codable, Sendable {
    public var station: String?
    public var generatedAt: Date
    public var results: [CheckResult]

    /// 0 when everything passed (or was skipped), 1 with a warning, 2 with a failure.
    public var exitCode: Int32 {
        Int32(results.map(\.status.severity).max() ?? 0)
    }

    public var counts: [String: Int] {
        var c: [String: Int] = [:]
        for r in results { c[r.status.rawValue, default: 0] += 1 }
        return c
    }

    enum CodingKeys: String, CodingKey {
        case station, results = "checks", generatedAt = "generated_at"
    }

    public func json() -> String {
        struct Wire: Encodable {
            let report: DiagnosticReport
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: K.self)
                try c.encode(report.station, forKey: .station)
                try c.encode(ISO8601DateFormatter().string(from: report.generatedAt), forKey: .generatedAt)
                try c.encode(report.exitCode, forKey: .exitCode)
                try c.encode(report.counts, forKey: .summary)
                try c.encode(report.results, forKey: .checks)
            }
            enum K: String, CodingKey { case station, generatedAt = "generated_at", exitCode = "exit_code", summary, checks }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Wire(report: self))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A fixed-width table; `color` adds ANSI colours (only on a terminal).
    public func table(color: Bool) -> String {
        let width = max(12, results.map(\.check.count).max() ?? 0)
        func paint(_ s: CheckStatus) -> String {
            guard color else { return s.rawValue }
            let code = switch s { case .pass: "32"; case .warn: "33"; case .fail: "1;31"; case .skip: "2" }
            return "\u{1B}[\(code)m\(s.rawValue)\u{1B}[0m"
        }
        var out = "Telestation diagnosis\(station.map { " — station \($0)" } ?? "") — \(ISO8601DateFormatter().string(from: generatedAt))\n\n"
        for r in results {
            out += "\(paint(r.status))  \(r.check.padding(toLength: width, withPad: " ", startingAt: 0))  \(r.finding)\n"
            if let next = r.nextStep {
                out += "      \(String(repeating: " ", count: width))  → \(next)\n"
            }
        }
        let c = counts
        out += "\n\(c["PASS"] ?? 0) passed, \(c["WARN"] ?? 0) warnings, \(c["FAIL"] ?? 0) failed, \(c["SKIP"] ?? 0) skipped\n"
        return out
    }
}
