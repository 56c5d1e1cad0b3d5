/// One `-e KEY=VALUE` (or `-e KEY`, which takes KEY from the caller's environment, as docker does).
public struct VariableAssignment: Sendable, Equatable {
    /// The variable's name, `[A-Za-z_][A-Za-z0-9_]*`.
    public var name: String
    /// Its value, possibly empty.
    public var value: String

    /// Makes an assignment.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Parses `KEY=VALUE` (the value may be empty and may contain `=`) or a bare `KEY`.
    public static func parse(_ text: String, environment: [String: String]) throws -> VariableAssignment {
        let name: String
        let value: String?
        if let equals = text.firstIndex(of: "=") {
            name = String(text[..<equals])
            value = String(text[text.index(after: equals)...])
        } else {
            name = text
            value = environment[text]
        }
        guard DotEnv.isValidName(name) else {
            throw CLIError.usage("-e '\(text)': '\(name)' is not a valid variable name; write -e KEY=VALUE"
                                 + " (the target environment is chosen with --env-name)")
        }
        guard let value else {
            throw CLIError.usage("-e \(name): \(name) is not set in this shell; write -e \(name)=VALUE")
        }
        return VariableAssignment(name: name, value: value)
    }

    /// The stack variables of an env file's text and `-e` assignments, the latter winning.
    public static func merge(envFile: [String: String], assignments: [VariableAssignment]) -> [String: String] {
        var result = envFile
        for assignment in assignments { result[assignment.name] = assignment.value }
        return result
    }
}
