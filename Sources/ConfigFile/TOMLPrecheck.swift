import Config
/// Checks TOML text for what the bundled parser (toml++ 3) mishandles before
/// handing it over. A table header whose first character cannot start a key
/// — `[cámara]`, `[,]`, `[#]`, `[` alone on its line — reaches an assertion in toml++ that aborts
/// the process (and is undefined behaviour in optimised builds) instead of
/// raising a parse error; so does a `}` where an array expects a value
/// (`x = [1, }`). All are errors in TOML, so they get a clear message here:
/// non-ASCII characters outside strings and comments (keys are plain ASCII),
/// headers that do not start with a key, and a `}` inside an array.
enum TOMLPrecheck {
    struct Problem: Equatable {
        var line: Int
        var character: Character
        var inHeader = false
        /// A `}` whose innermost open bracket is an array's `[`.
        var closesArray = false
    }

    static func canStartKey(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-" || c == "\"" || c == "'")
    }

    static func firstNonASCIIOutsideStrings(_ text: String) -> Problem? {
        enum State { case normal, comment, basic, literal, multiBasic, multiLiteral }
        var state = State.normal
        var line = 1
        let chars = Array(text)
        var i = 0
        var atLineStart = true
        // Open arrays and inline tables: toml++ aborts on a `}` where an array expects a value.
        var brackets: [Character] = []
        func starts(_ s: String) -> Bool {
            let a = Array(s)
            return i + a.count <= chars.count && Array(chars[i..<i + a.count]) == a
        }
        while i < chars.count {
            let c = chars[i]
            if c == "\n" || c == "\r\n" {
                line += 1
                atLineStart = true
                if state == .comment || state == .basic || state == .literal { state = .normal }
                i += 1
                continue
            }
            switch state {
            case .normal:
                if c == "[" && atLineStart {
                    var j = i + 1
                    if j < chars.count && chars[j] == "[" { j += 1 }
                    while j < chars.count && (chars[j] == " " || chars[j] == "\t") { j += 1 }
                    if j < chars.count && chars[j] != "]" && !canStartKey(chars[j]) {
                        return Problem(line: line, character: chars[j], inHeader: true)
                    }
                }
                let header = c == "[" && atLineStart && brackets.isEmpty
                if c != " " && c != "\t" { atLineStart = false }
                if (c == "[" && !header) || c == "{" { brackets.append(c) }
                else if c == "]" || c == "}" {
                    if c == "}" && brackets.last == "[" { return Problem(line: line, character: c, closesArray: true) }
                    if !brackets.isEmpty { brackets.removeLast() }
                }
                if c == "#" { state = .comment }
                else if starts("\"\"\"") { state = .multiBasic; i += 2 }
                else if starts("'''") { state = .multiLiteral; i += 2 }
                else if c == "\"" { state = .basic }
                else if c == "'" { state = .literal }
                else if !c.isASCII { return Problem(line: line, character: c) }
            case .comment:
                break
            case .basic:
                if c == "\\" { i += 1 } else if c == "\"" { state = .normal }
            case .literal:
                if c == "'" { state = .normal }
            case .multiBasic:
                if c == "\\" { i += 1 } else if starts("\"\"\"") { state = .normal; i += 2 }
            case .multiLiteral:
                if starts("'''") { state = .normal; i += 2 }
            }
            i += 1
        }
        return nil
    }

    /// Throws the configuration error for `text`, if the precheck finds one.
    static func check(_ text: String, file: String) throws(ConfigError) {
        if let p = firstNonASCIIOutsideStrings(text), p.closesArray {
            throw ConfigError(file: file, line: p.line, message: "'}' inside an array; an array ends with ']'",
                              nextStep: "close the array with ] (and an inline table with })")
        }
        if let p = firstNonASCIIOutsideStrings(text), p.inHeader, p.character.isASCII {
            throw ConfigError(file: file, line: p.line,
                              message: p.character.isNewline ? "a section header has no name" : "'\(p.character)' cannot start a section name",
                              nextStep: "write the section as [name], e.g. [camera]")
        }
        if let p = firstNonASCIIOutsideStrings(text) {
            throw ConfigError(file: file, line: p.line, message: "'\(p.character)' outside quotes: section names and keys are plain ASCII",
                              nextStep: "write names without accents (e.g. [camera]), and put text values in \"quotes\"")
        }
    }
}
