/// Docker Compose variable interpolation (`$VAR`, `${VAR:-default}`, `$$`, …), matching compose-go v2.
///
/// The rules are those of compose-go's `template` package, including its less obvious ones:
/// - `$` not followed by `$`, `{` or a name start is kept literally (`$1`, `$-`, a trailing `$`).
/// - `$NAME` takes the longest run of `[A-Za-z0-9_]`, so `$VAR_suffix` names `VAR_suffix`.
/// - `${` must be followed by a name and then `}` or one of `:-`, `-`, `:?`, `?`, `:+`, `+`;
///   anything else (`${}`, `${ VAR }`, `${VAR:x}`, an unclosed `${VAR`) is an invalid template.
/// - A modifier's argument runs to the first `}` that balances the opening brace and may itself
///   contain substitutions; the argument must close on the same line.
/// - Arguments are evaluated eagerly: `${SET:-${UNSET:?msg}}` fails although the default is unused.
/// - A variable that is unset and has no modifier becomes the empty string; compose warns about it,
///   and ``interpolate(_:environment:unsetVariables:)`` reports its name.
public enum Interpolation {
    /// Substitutes the variables in `text` from `environment`; a key mapped to `""` counts as set but empty.
    ///
    /// - Throws: ``InterpolationError`` for an invalid template or a missing required variable.
    public static func interpolate(
        _ text: String,
        environment: [String: String]
    ) throws(InterpolationError) -> String {
        var unset: [String] = []
        return try interpolate(text, environment: environment, unsetVariables: &unset)
    }

    /// Substitutes the variables in `text` and appends to `unsetVariables` each unset variable used without a modifier.
    ///
    /// Names already in `unsetVariables` are not added twice, so one array can collect the
    /// warnings of a whole document.
    public static func interpolate(
        _ text: String,
        environment: [String: String],
        unsetVariables: inout [String]
    ) throws(InterpolationError) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(Byte.dollar) else { return text }
        var substitution = Substitution(environment: environment)
        let result = try substitution.substitute(bytes[...])
        for name in substitution.unset where !unsetVariables.contains(name) {
            unsetVariables.append(name)
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Tells whether `name` is a valid variable name, `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isValidVariableName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, Byte.isNameStart(first) else { return false }
        return bytes.dropFirst().allSatisfy(Byte.isNameCharacter)
    }
}

/// Why a text could not be interpolated.
public struct InterpolationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable machine-readable kind of an ``InterpolationError``.
    public enum Code: String, Hashable, Sendable {
        /// The text has a `$` expression that compose cannot parse.
        case invalidTemplate = "invalid_template"
        /// A `${VAR:?message}` or `${VAR?message}` variable has no value.
        case missingVariable = "missing_variable"
    }

    /// The kind of failure.
    public let code: Code
    /// A human sentence naming the variable or the offending text.
    public let message: String
    /// The required variable that was missing, for ``Code/missingVariable``.
    public let variable: String?
    /// The offending `$…` text, for ``Code/invalidTemplate``.
    public let fragment: String?

    /// The message.
    public var description: String { message }

    static func invalidTemplate(fragment: String) -> InterpolationError {
        InterpolationError(
            code: .invalidTemplate,
            message: "invalid interpolation format \"\(fragment)\": write $$ for a literal $",
            variable: nil,
            fragment: fragment
        )
    }

    static func missingVariable(_ name: String, reason: String) -> InterpolationError {
        // The same wording as compose-go, so users can search for it.
        let message =
            reason.isEmpty
            ? "required variable \(name) is missing a value"
            : "required variable \(name) is missing a value: \(reason)"
        return InterpolationError(code: .missingVariable, message: message, variable: name, fragment: nil)
    }
}

// MARK: - Implementation

private enum Byte {
    static let dollar = UInt8(ascii: "$")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let colon = UInt8(ascii: ":")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let question = UInt8(ascii: "?")
    static let newline = UInt8(ascii: "\n")

    static func isNameStart(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    static func isNameCharacter(_ byte: UInt8) -> Bool {
        isNameStart(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

private enum Modifier {
    case defaultIfUnsetOrEmpty  // :-
    case defaultIfUnset  // -
    case requiredNonEmpty  // :?
    case required  // ?
    case alternativeIfNonEmpty  // :+
    case alternativeIfSet  // +

    init?(_ byte: UInt8, colon: Bool) {
        switch (byte, colon) {
        case (Byte.minus, true): self = .defaultIfUnsetOrEmpty
        case (Byte.minus, false): self = .defaultIfUnset
        case (Byte.question, true): self = .requiredNonEmpty
        case (Byte.question, false): self = .required
        case (Byte.plus, true): self = .alternativeIfNonEmpty
        case (Byte.plus, false): self = .alternativeIfSet
        default: return nil
        }
    }
}

/// One run of compose-go's substitution over UTF-8 bytes.
///
/// compose-go matches `\$(?:(\$)|(name)|\{(?:(name(?::?[-+?](.*))?)\}|()))` and then cuts a
/// braced match at its first balanced `}`, substituting the remainder separately. The greedy
/// `.*` runs to the last `}` on the line; this type reproduces that cut instead of a textbook
/// brace matcher, so unbalanced braces behave as they do in compose.
private struct Substitution {
    let environment: [String: String]
    var unset: [String] = []

    mutating func substitute(_ text: ArraySlice<UInt8>) throws(InterpolationError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            let next = index + 1
            guard byte == Byte.dollar, next < text.endIndex else {
                output.append(byte)
                index += 1
                continue
            }
            switch text[next] {
            case Byte.dollar:
                output.append(Byte.dollar)
                index += 2
            case let start where Byte.isNameStart(start):
                var end = next + 1
                while end < text.endIndex, Byte.isNameCharacter(text[end]) { end += 1 }
                output += lookup(name(text[next..<end]))
                index = end
            case Byte.openBrace:
                let (value, end) = try braced(text, at: index)
                output += value
                index = end
            default:
                output.append(byte)
                index += 1
            }
        }
        return output
    }

    /// Substitutes the `${…}` expression starting at `start`; returns its value and the index after it.
    private mutating func braced(
        _ text: ArraySlice<UInt8>,
        at start: Int
    ) throws(InterpolationError) -> ([UInt8], Int) {
        let nameStart = start + 2
        guard nameStart < text.endIndex, Byte.isNameStart(text[nameStart]) else {
            throw invalid(text, at: start)
        }
        var nameEnd = nameStart + 1
        while nameEnd < text.endIndex, Byte.isNameCharacter(text[nameEnd]) { nameEnd += 1 }
        let variable = name(text[nameStart..<nameEnd])
        guard nameEnd < text.endIndex else { throw invalid(text, at: start) }
        if text[nameEnd] == Byte.closeBrace {
            return (lookup(variable), nameEnd + 1)
        }

        let modifier: Modifier
        let argumentStart: Int
        if text[nameEnd] == Byte.colon, nameEnd + 1 < text.endIndex,
            let found = Modifier(text[nameEnd + 1], colon: true)
        {
            modifier = found
            argumentStart = nameEnd + 2
        } else if let found = Modifier(text[nameEnd], colon: false) {
            modifier = found
            argumentStart = nameEnd + 1
        } else {
            throw invalid(text, at: start)
        }

        // The regular expression's `(.*)\}`: the last `}` before the end of the line.
        let lineEnd = text[argumentStart...].firstIndex(of: Byte.newline) ?? text.endIndex
        guard let matchEnd = text[argumentStart..<lineEnd].lastIndex(of: Byte.closeBrace) else {
            throw invalid(text, at: start)
        }
        let closing = firstBalancedClosingBrace(text[start...matchEnd])
        let argument = text[argumentStart..<(closing ?? matchEnd)]
        let rest = closing.map { text[($0 + 1)..<(matchEnd + 1)] } ?? []

        var value = try apply(modifier, to: variable, argument: argument)
        value += try substitute(rest)
        return (value, matchEnd + 1)
    }

    private mutating func apply(
        _ modifier: Modifier,
        to variable: String,
        argument: ArraySlice<UInt8>
    ) throws(InterpolationError) -> [UInt8] {
        // compose-go substitutes the argument before it looks at the variable, so errors and
        // warnings in an unused default still surface.
        let argumentValue = try substitute(argument)
        let value = environment[variable]
        switch modifier {
        case .defaultIfUnsetOrEmpty:
            if let value, !value.isEmpty { return Array(value.utf8) }
            return argumentValue
        case .defaultIfUnset:
            if let value { return Array(value.utf8) }
            return argumentValue
        case .requiredNonEmpty:
            guard let value, !value.isEmpty else {
                throw .missingVariable(variable, reason: String(decoding: argumentValue, as: UTF8.self))
            }
            return Array(value.utf8)
        case .required:
            guard let value else {
                throw .missingVariable(variable, reason: String(decoding: argumentValue, as: UTF8.self))
            }
            return Array(value.utf8)
        case .alternativeIfNonEmpty:
            if let value, !value.isEmpty { return argumentValue }
            return Array((value ?? "").utf8)
        case .alternativeIfSet:
            return value == nil ? [] : argumentValue
        }
    }

    private mutating func lookup(_ variable: String) -> [UInt8] {
        guard let value = environment[variable] else {
            if !unset.contains(variable) { unset.append(variable) }
            return []
        }
        return Array(value.utf8)
    }

    private func name(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// compose-go's `getFirstBraceClosingIndex`: it counts every `{` and skips the byte after it.
    private func firstBalancedClosingBrace(_ text: ArraySlice<UInt8>) -> Int? {
        var depth = 0
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == Byte.closeBrace {
                depth -= 1
                if depth == 0 { return index }
            }
            if text[index] == Byte.openBrace {
                depth += 1
                index += 1
            }
            index += 1
        }
        return nil
    }

    /// An invalid-template error quoting the expression at `start`, up to its `}` or the end of the line.
    private func invalid(_ text: ArraySlice<UInt8>, at start: Int) -> InterpolationError {
        var end = start + 2
        while end < text.endIndex, text[end] != Byte.newline, end - start < 64 {
            end += 1
            if text[end - 1] == Byte.closeBrace { break }
        }
        // Never cut a multi-byte character in half.
        while end < text.endIndex, text[end] & 0xC0 == 0x80 { end += 1 }
        return .invalidTemplate(fragment: String(decoding: text[start..<min(end, text.endIndex)], as: UTF8.self))
    }
}
