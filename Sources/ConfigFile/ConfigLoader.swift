import Config
import Foundation
import TOMLKit

extension StationConfig {
    /// Loads and validates the file at `path`.
    public static func load(path: String) throws(ConfigError) -> StationConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(file: path, message: "configuration file not found",
                              nextStep: "create it from hardware/station.example.toml, or pass --config PATH")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, message: "configuration file is not readable by this user",
                              nextStep: "check its owner and mode (root:telestation 0640)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, message: "configuration file is not UTF-8 text", nextStep: "save it as UTF-8")
        }
        return try parse(text, file: path)
    }

    /// Parses and validates TOML text; `file` names it in error messages.
    public static func parse(_ text: String, file: String = "<config>") throws(ConfigError) -> StationConfig {
        try TOMLPrecheck.check(text, file: file)
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, message: "TOML syntax error: \(e.description)",
                              nextStep: "fix the line (strings need \"quotes\", sections are [name])")
        } catch {
            throw ConfigError(file: file, message: "TOML syntax error: \(error)")
        }

        let keys = ConfigSchema.keys
        let byPath = Dictionary(uniqueKeysWithValues: keys.map { ($0.path, $0) })
        var config = StationConfig()
        var seen = Set<String>()

        func problem(_ path: String, _ message: String, _ fix: String?) -> ConfigError {
            ConfigError(file: file, line: locate(path, in: text), key: path, message: message, nextStep: fix)
        }

        for (sectionName, sectionValue) in root {
            guard ConfigSchema.sections.contains(sectionName) else {
                throw problem(sectionName, "unknown section [\(sectionName)]",
                              suggestion(sectionName, among: ConfigSchema.sections) ?? "known sections: \(ConfigSchema.sections.joined(separator: ", "))")
            }
            guard let section = sectionValue.table else {
                throw problem(sectionName, "\(sectionName) must be a section", "write [\(sectionName)] on its own line and its keys below it")
            }
            for (name, value) in section {
                let path = "\(sectionName).\(name)"
                guard let key = byPath[path] else {
                    let names = keys.filter { $0.section == sectionName }.map(\.name)
                    throw problem(path, "unknown key",
                                  suggestion(name, among: names) ?? "keys of [\(sectionName)]: \(names.joined(separator: ", "))")
                }
                do {
                    try key.apply(value, &config)
                } catch {
                    throw problem(path, error.message, error.fix)
                }
                seen.insert(path)
            }
        }

        for key in keys where key.required && !seen.contains(key.path) {
            throw ConfigError(file: file, key: key.path, message: "required key is missing",
                              nextStep: "add it under [\(key.section)]: \(key.name) = \(key.example)")
        }
        if config.uplink.minChunk > config.uplink.maxChunk {
            throw problem("uplink.min_chunk", "\(Units.formatBytes(config.uplink.minChunk)) is larger than uplink.max_chunk (\(Units.formatBytes(config.uplink.maxChunk)))",
                          "make min_chunk smaller than max_chunk")
        }
        if (config.camera.width == nil) != (config.camera.height == nil) {
            throw problem(config.camera.width == nil ? "camera.height" : "camera.width", "width and height must be given together",
                          "set both camera.width and camera.height, or neither")
        }
        config.explicitKeys = seen
        return config
    }

    /// Line number of `section.key` (or of `[section]`) in the text, for messages.
    static func locate(_ path: String, in text: String) -> Int? {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        var section = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                section = line.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                    .split(separator: "#")[0].trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                if parts.count == 1 && section == parts[0] { return index + 1 }
                continue
            }
            guard parts.count == 2, section == parts[0] || section == path else { continue }
            let key = section == path ? "" : parts[1]
            if key.isEmpty { return index + 1 }
            if let eq = line.firstIndex(of: "="),
               line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) == key {
                return index + 1
            }
        }
        return nil
    }

    static func suggestion(_ word: String, among candidates: [String]) -> String? {
        let best = candidates.map { ($0, editDistance(word.lowercased(), $0)) }.min { $0.1 < $1.1 }
        guard let (name, distance) = best, distance <= max(2, word.count / 3) else { return nil }
        return "did you mean \(name)?"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

extension ConfigSchema {
    /// The annotated example configuration, every key with its comment.
    /// `hardware/station.example.toml` is this text; a test keeps them equal.
    public static func exampleText() -> String {
        var out = """
        # Telestation station configuration (/etc/telestation/station.toml).
        # Every key is shown with its comment; keys shown commented out are optional.
        # Sizes: 512, 64KiB, 4MiB. Durations: 30s, 5m, 7d. Rates: 64kbit, 16KiB/s, unlimited.

        """
        let all = keys
        for section in sections {
            out += "\n[\(section)]\n"
            for key in all where key.section == section && key.path != "camera.controls" {
                out += "# \(key.doc)\(key.required ? " (required)" : "")\n"
                out += "\(key.optional ? "# " : "")\(key.name) = \(key.example)\n"
            }
            if section == "camera", let controls = all.first(where: { $0.path == "camera.controls" }) {
                out += "\n# \(controls.doc)\n# [camera.controls]\n# power_line_frequency = 2   # 60 Hz mains (Peru); 1 is 50 Hz\n# focus_automatic_continuous = 0\n"
            }
        }
        return out
    }
}
