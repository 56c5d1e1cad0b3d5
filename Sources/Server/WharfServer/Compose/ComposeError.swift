import WharfProtocol

/// Why a compose file could not be resolved or retargeted, with the place it happened.
public struct ComposeError: Error, Sendable, CustomStringConvertible {
    /// The stable machine-readable kind of a ``ComposeError``.
    public enum Code: String, Hashable, Sendable {
        /// The YAML is malformed or its structure is not a usable compose file.
        case invalidCompose = "invalid_compose"
        /// A value has a `$` expression that compose cannot parse.
        case invalidTemplate = "invalid_template"
        /// A `${VAR:?…}` or `${VAR?…}` variable has no value.
        case missingVariable = "missing_variable"
        /// A service's image is not a valid Docker image reference.
        case invalidImage = "invalid_image"
        /// A requested tag is not a valid Docker tag.
        case invalidTag = "invalid_tag"
        /// A deployment plan names a service the compose file does not have.
        case unknownService = "unknown_service"
        /// A stack's env would be too large for its jobs to reach the agent (`StackLimits`).
        case stackTooLarge = "stack_too_large"
    }

    /// The kind of failure.
    public let code: Code
    /// A human sentence stating what is wrong and where, e.g. `services.web.image: required variable …`.
    public let message: String
    /// The dotted path of the offending value, e.g. `services.web.image`, when there is one.
    public let path: String?
    /// The 1-based line of the problem in the compose text, when known.
    public let line: Int?
    /// The 1-based column of the problem in the compose text, when known.
    public let column: Int?
    /// The lower-level error, such as an ``InterpolationError`` or ``ImageReferenceError``.
    public let cause: (any Error & Sendable)?

    /// Creates an error; `message` should already name the place.
    public init(
        code: Code,
        message: String,
        path: String? = nil,
        line: Int? = nil,
        column: Int? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.cause = cause
    }

    /// The message.
    public var description: String { message }
}
