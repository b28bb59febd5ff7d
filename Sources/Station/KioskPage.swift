import Config
import Foundation

/// The kiosk page: one self-contained document (markup, style, script)
/// rendered with one language's strings. Built for a 7-inch touchscreen
/// (800×480 up to 1024×600) used with gloves: every control is at least
/// 56 px, text reads at arm's length, nothing needs a mouse or a keyboard —
/// the case id has its own keypad.
public enum KioskPage {
    public static func render(language: StationConfig.Language, caseFormats: String) -> String {
        let strings = KioskStrings.table(language)
        let stringsJSON = jsonText(strings)
        let sitesJSON = jsonText(BodySite.allCases.map(\.rawValue))
        return template
            .replacingOccurrences(of: "{{STYLE}}", with: style)
            .replacingOccurrences(of: "{{SCRIPT}}", with: script)
            .replacingOccurrences(of: "{{LANG}}", with: language.rawValue)
            .replacingOccurrences(of: "{{TITLE}}", with: escape(strings["title"] ?? "Telestation"))
            .replacingOccurrences(of: "{{STRINGS}}", with: stringsJSON)
            .replacingOccurrences(of: "{{SITES}}", with: sitesJSON)
    }

    private static func jsonText<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
        // Inside <script>, "</" could close the element early.
        return text.replacingOccurrences(of: "</", with: "<\\/")
    }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    // The page's files (Sources/Station/Kiosk/), compiled into the binary by
    // SwiftPM's `embedInCode` so the installed daemon needs no resource folder.
    static let template = String(decoding: PackageResources.kiosk_html, as: UTF8.self)
    static let style = String(decoding: PackageResources.kiosk_css, as: UTF8.self)
    static let script = String(decoding: PackageResources.kiosk_js, as: UTF8.self)
}
