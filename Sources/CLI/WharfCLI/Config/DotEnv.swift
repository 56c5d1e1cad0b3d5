/// Reads `.env` files as `docker compose --env-file` does.
///
/// - `KEY=VALUE` per line; blank lines and lines starting with `#` are skipped; `export KEY=VALUE` works.
/// - Unquoted values are trimmed, and ` #` (a `#` after a space) starts a comment; a `#` that begins
///   the value (`KEY=#ff6600`, `KEY= #abc`) or follows another character is part of it.
/// - `'single quotes'` keep everything literally; `"double quotes"` understand `\n`, `\t`, `\r`, `\\`,
///   `\"` and `\$`. Quoted values may span lines.
/// - Unquoted and double-quoted values interpolate `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
///   `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}` and `$$`, looking names up in
///   `lookup` (the process environment) first and then in the file's earlier lines, as compose does.
/// - A bare `KEY` takes its value from `lookup`, and is skipped when that has none.
public enum DotEnv {
    /// The variables `text` defines; throws `invalid_env_file` naming the line of the first problem.
    public static func parse(_ text: String, name: String = ".env",
                             lookup: (String) -> String? = { _ in nil }) throws -> [String: String] {
        try withoutActuallyEscaping(lookup) { lookup in
            var parser = Parser(text: text, name: name, lookup: lookup)
            return try parser.parse()
        }
    }

    /// The variables of several env files read in order, as `docker compose --env-file a
    /// --env-file b` reads them: a later file's variable replaces an earlier one's, and a later
    /// file looks names up in `lookup` first, then in the earlier files.
    public static func parse(files: [(name: String, text: String)], lookup: (String) -> String? = { _ in nil }) throws -> [String: String] {
        var merged: [String: String] = [:]
        for file in files {
            let earlier = merged
            let parsed = try parse(file.text, name: file.name) { lookup($0) ?? earlier[$0] }
            merged.merge(parsed) { _, new in new }
        }
        return merged
    }

    /// Whether `name` is `[A-Za-z_][A-Za-z0-9_]*`, the only names the server accepts.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, isNameStart(first) else { return false }
        return name.unicodeScalars.allSatisfy(isNameCharacter)
    }

    static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c)
    }

    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        isNameStart(c) || ("0"..."9").contains(c)
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        let name: String
        let lookup: (String) -> String?
        var index = 0
        var line = 1
        var values: [String: String] = [:]

        init(text: String, name: String, lookup: @escaping (String) -> String?) {
            // CRLF files read like LF ones.
            var scalars: [Unicode.Scalar] = []
            let source = Array(text.unicodeScalars)
            for (position, scalar) in source.enumerated() {
                if scalar == "\r", position + 1 < source.count, source[position + 1] == "\n" { continue }
                scalars.append(scalar)
            }
            self.scalars = scalars
            self.name = name
            self.lookup = lookup
        }

        var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        func failure(_ message: String, line: Int? = nil) -> CLIError {
            CLIError(code: "invalid_env_file", message: "\(name) line \(line ?? self.line): \(message)")
        }

        mutating func skipBlanks() {
            while let c = current, c == " " || c == "\t" { index += 1 }
        }

        mutating func skipToEndOfLine() {
            while let c = current, c != "\n" { index += 1 }
        }

        mutating func parse() throws -> [String: String] {
            while index < scalars.count {
                skipBlanks()
                guard let c = current else { break }
                if c == "\n" { index += 1; line += 1; continue }
                if c == "#" { skipToEndOfLine(); continue }
                try parseAssignment()
            }
            return values
        }

        mutating func readKey() -> String {
            var key = String.UnicodeScalarView()
            while let c = current, c != "=", c != " ", c != "\t", c != "\n", c != "#" {
                key.append(c)
                index += 1
            }
            return String(key)
        }

        mutating func parseAssignment() throws {
            let startLine = line
            var key = readKey()
            if key == "export", let c = current, c == " " || c == "\t" {
                skipBlanks()
                key = readKey()
            }
            guard isValidName(key) else {
                throw failure(key.isEmpty ? "expected KEY=VALUE" : "'\(key)' is not a valid variable name (use letters, digits and _, not starting with a digit)")
            }
            skipBlanks()
            guard current == "=" else {
                guard current == nil || current == "\n" || current == "#" else { throw failure("expected '=' after \(key)") }
                skipToEndOfLine()
                if let value = lookup(key) { values[key] = value }
                return
            }
            index += 1
            skipBlanks()
            let value: String
            switch current {
            case "'":
                value = try readQuoted(quote: "'", startLine: startLine)
                try expectEndOfLine()
            case "\"":
                value = try interpolate(readQuoted(quote: "\"", startLine: startLine))
                try expectEndOfLine()
            default:
                value = try interpolate(readUnquoted())
            }
            values[key] = value
        }

        /// Reads up to the closing quote. Double-quoted escapes become their characters, except `\$`,
        /// which becomes `$$` so that interpolation leaves a literal `$`.
        mutating func readQuoted(quote: Unicode.Scalar, startLine: Int) throws -> String {
            index += 1
            var text = String.UnicodeScalarView()
            while let c = current {
                index += 1
                if c == quote { return String(text) }
                if c == "\n" { line += 1 }
                if quote == "\"", c == "\\", let next = current {
                    index += 1
                    switch next {
                    case "n": text.append("\n")
                    case "t": text.append("\t")
                    case "r": text.append("\r")
                    case "\\": text.append("\\")
                    case "\"": text.append("\"")
                    case "$": text.append(contentsOf: "$$".unicodeScalars)
                    case "\n": line += 1; text.append(contentsOf: ["\\", "\n"])
                    default: text.append(contentsOf: ["\\", next])
                    }
                    continue
                }
                text.append(c)
            }
            throw failure("the value's \(quote == "'" ? "single" : "double") quote is never closed", line: startLine)
        }

        mutating func readUnquoted() throws -> String {
            var text = String.UnicodeScalarView()
            // The blanks before the value are already skipped, so a leading `#` is part of the value,
            // as in compose's dotenv parser, which cuts unquoted values at " #" only.
            var previous: Unicode.Scalar? = nil
            while let c = current, c != "\n" {
                if c == "#", previous == " " { break }
                text.append(c)
                previous = c
                index += 1
            }
            skipToEndOfLine()
            return String(text).trimmingTrailingBlanks()
        }

        mutating func expectEndOfLine() throws {
            skipBlanks()
            guard let c = current, c != "\n" else { return }
            guard c == "#" else { throw failure("unexpected text after the closing quote") }
            skipToEndOfLine()
        }

        func interpolate(_ text: String) throws -> String {
            do {
                return try Template.substitute(text) { name in lookup(name) ?? values[name] }
            } catch let error as Template.Failure {
                throw failure(error.message)
            }
        }
    }
}

/// Compose's `$VAR` / `${VAR…}` substitution, used for `.env` values.
enum Template {
    struct Failure: Error { var message: String }

    static func substitute(_ text: String, lookup: (String) -> String?) throws -> String {
        let scalars = Array(text.unicodeScalars)
        var output = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            let c = scalars[index]
            guard c == "$", index + 1 < scalars.count else {
                output.append(c)
                index += 1
                continue
            }
            let next = scalars[index + 1]
            if next == "$" {
                output.append("$")
                index += 2
            } else if next == "{" {
                var depth = 1
                var end = index + 2
                while end < scalars.count {
                    if scalars[end] == "{" { depth += 1 }
                    if scalars[end] == "}" { depth -= 1; if depth == 0 { break } }
                    end += 1
                }
                guard end < scalars.count else { throw Failure(message: "'${' is never closed with '}'") }
                let inner = String(String.UnicodeScalarView(scalars[(index + 2)..<end]))
                output.append(contentsOf: try expand(inner, lookup: lookup).unicodeScalars)
                index = end + 1
            } else if DotEnv.isNameStart(next) {
                var end = index + 1
                while end < scalars.count, DotEnv.isNameCharacter(scalars[end]) { end += 1 }
                let name = String(String.UnicodeScalarView(scalars[(index + 1)..<end]))
                output.append(contentsOf: (lookup(name) ?? "").unicodeScalars)
                index = end
            } else {
                output.append(c)
                index += 1
            }
        }
        return String(output)
    }

    /// The inside of `${…}`: a name and an optional operator with its word.
    private static func expand(_ inner: String, lookup: (String) -> String?) throws -> String {
        let name = String(inner.unicodeScalars.prefix(while: DotEnv.isNameCharacter))
        guard DotEnv.isValidName(name) else { throw Failure(message: "'${\(inner)}' is not a valid substitution") }
        let rest = String(inner.unicodeScalars.dropFirst(name.unicodeScalars.count))
        let value = lookup(name)
        if rest.isEmpty { return value ?? "" }
        let operators = [":-", ":?", ":+", "-", "?", "+"]
        guard let op = operators.first(where: { rest.hasPrefix($0) }) else {
            throw Failure(message: "'${\(inner)}' is not a valid substitution")
        }
        let word = String(rest.dropFirst(op.count))
        let unsetOrEmpty = value?.isEmpty ?? true
        switch op {
        case ":-": return try unsetOrEmpty ? substitute(word, lookup: lookup) : value!
        case "-": return try value ?? substitute(word, lookup: lookup)
        case ":+": return try unsetOrEmpty ? "" : substitute(word, lookup: lookup)
        case "+": return try value == nil ? "" : substitute(word, lookup: lookup)
        case ":?":
            if unsetOrEmpty { throw Failure(message: "\(name) is required: \(word.isEmpty ? "it is unset or empty" : word)") }
            return value!
        default:
            guard let value else { throw Failure(message: "\(name) is required: \(word.isEmpty ? "it is unset" : word)") }
            return value
        }
    }
}

extension String {
    func trimmingTrailingBlanks() -> String {
        var result = self
        while let last = result.unicodeScalars.last, last == " " || last == "\t" { result.unicodeScalars.removeLast() }
        return result
    }
}
