import Testing
import WharfProtocol

struct InterpolationTests {
    /// One row of the grammar table: a template and what compose-go makes of it.
    struct Case: Sendable, CustomTestStringConvertible {
        enum Outcome: Sendable {
            case value(String)
            /// The error code, and text the message must contain.
            case failure(InterpolationError.Code, String)
        }

        let template: String
        let outcome: Outcome

        var testDescription: String { "\(template.debugDescription)" }

        static func gives(_ template: String, _ value: String) -> Case {
            Case(template: template, outcome: .value(value))
        }

        static func fails(_ template: String, _ code: InterpolationError.Code, _ text: String) -> Case {
            Case(template: template, outcome: .failure(code, text))
        }
    }

    static let environment = [
        "FOO": "first",
        "BAR": "",
        "A_B": "ab",
        "TAG": "v1",
        "NAME": "wörld",
    ]

    static let cases: [Case] = [
        // Text without substitutions, and `$` that starts nothing.
        .gives("plain text", "plain text"),
        .gives("", ""),
        .gives("$", "$"),
        .gives("a $ string", "a $ string"),
        .gives("^REGEX$", "^REGEX$"),
        .gives("$1", "$1"),
        .gives("$-", "$-"),
        .gives("$}", "$}"),
        .gives("$é", "$é"),
        // Plain and braced names.
        .gives("$FOO", "first"),
        .gives("${FOO}", "first"),
        .gives("${FOO}suffix", "firstsuffix"),
        .gives("$FOO-bar", "first-bar"),
        .gives("$A_B", "ab"),
        .gives("$FOO_with_underscore", ""),
        .gives("${foo}", ""),
        .gives("${MISSING}", ""),
        .gives("This ${BAR} var", "This  var"),
        .gives("registry:5000/app:${TAG:-latest}", "registry:5000/app:v1"),
        .gives("line1 $FOO\nline2 ${FOO:-x}", "line1 first\nline2 first"),
        // Escapes.
        .gives("$$", "$"),
        .gives("$$FOO", "$FOO"),
        .gives("$${FOO}", "${FOO}"),
        .gives("$$$FOO", "$first"),
        .gives("$$$$", "$$"),
        // Defaults: `:-` on unset or empty, `-` on unset only.
        .gives("${MISSING:-def}", "def"),
        .gives("${BAR:-def}", "def"),
        .gives("${FOO:-def}", "first"),
        .gives("${MISSING-def}", "def"),
        .gives("${BAR-def}", ""),
        .gives("${MISSING:-}", ""),
        .gives("${MISSING-}", ""),
        .gives("${BAR:-/non:-alphanumeric}", "/non:-alphanumeric"),
        .gives("${MISSING-myerror?msg}", "myerror?msg"),
        .gives("${MISSING:-ünïcødé ✓}", "ünïcødé ✓"),
        .gives("héllo ${NAME}", "héllo wörld"),
        // Nesting, and what follows the first balanced brace.
        .gives("${MISSING:-${FOO}}", "first"),
        .gives("${A:-${B:-x}}", "x"),
        .gives("${MISSING-$FOO}", "first"),
        .gives("${BAR:-${FOO} ${FOO}}", "first first"),
        .gives("${MISSING:-a} and ${FOO:-b}", "a and first"),
        .gives("${MISSING:-x}}", "x}"),
        .gives("${MISSING:-{x}", "{x"),
        .gives("+ok ${MISSING:-${BAR-defaultValue}}", "+ok "),
        .gives("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
        // Alternatives: `:+` when set and non-empty, `+` when set.
        .gives("${FOO:+alt}", "alt"),
        .gives("${BAR:+alt}", ""),
        .gives("${MISSING:+alt}", ""),
        .gives("${BAR+alt}", "alt"),
        .gives("${MISSING+alt}", ""),
        .gives("${BAR+$FOO ${FOO:+second}}", "first second"),
        // Required: `:?` fails on unset or empty, `?` on unset only.
        .gives("${FOO:?err}", "first"),
        .gives("${FOO?err}", "first"),
        .gives("${BAR?err}", ""),
        .fails("${MISSING:?must be set}", .missingVariable, "required variable MISSING is missing a value: must be set"),
        .fails("${BAR:?cannot be empty}", .missingVariable, "required variable BAR is missing a value: cannot be empty"),
        .fails("${MISSING?}", .missingVariable, "required variable MISSING is missing a value"),
        .fails("${MISSING?bar-baz}", .missingVariable, "is missing a value: bar-baz"),
        .fails("${MISSING:?need ${FOO}}", .missingVariable, "is missing a value: need first"),
        // compose-go evaluates a default before it checks the variable.
        .fails("${FOO:-${MISSING:?eager}}", .missingVariable, "required variable MISSING is missing a value: eager"),
        // Invalid templates.
        .fails("${", .invalidTemplate, "\"${\""),
        .fails("${}", .invalidTemplate, "\"${}\""),
        .fails("${ }", .invalidTemplate, "\"${ }\""),
        .fails("${ FOO}", .invalidTemplate, "\"${ FOO}\""),
        .fails("${FOO }", .invalidTemplate, "\"${FOO }\""),
        .fails("${FOO!}", .invalidTemplate, "\"${FOO!}\""),
        .fails("${FOO:x}", .invalidTemplate, "\"${FOO:x}\""),
        .fails("${FOO", .invalidTemplate, "\"${FOO\""),
        .fails("${FOO:-x", .invalidTemplate, "\"${FOO:-x\""),
        .fails("${FOO:-x\n}", .invalidTemplate, "\"${FOO:-x\""),
        .fails("${1A}", .invalidTemplate, "\"${1A}\""),
        .fails("${é}", .invalidTemplate, "\"${é}\""),
        .fails("ok ${FOO} then ${", .invalidTemplate, "\"${\""),
        .fails("${MISSING:-${}}", .invalidTemplate, "\"${}\""),
    ]

    @Test(arguments: cases)
    func interpolates(_ testCase: Case) {
        switch testCase.outcome {
        case .value(let expected):
            #expect(throws: Never.self) {
                let result = try Interpolation.interpolate(testCase.template, environment: Self.environment)
                #expect(result == expected)
            }
        case .failure(let code, let text):
            let error = #expect(throws: InterpolationError.self) {
                try Interpolation.interpolate(testCase.template, environment: Self.environment)
            }
            #expect(error?.code == code)
            #expect(error?.message.contains(text) == true, "message: \(error?.message ?? "none")")
        }
    }

    @Test func tableIsLargeEnough() {
        #expect(Self.cases.count >= 40)
    }

    @Test func missingVariableNamesTheVariable() throws {
        let error = #expect(throws: InterpolationError.self) {
            try Interpolation.interpolate("image: app:${SERVICE_TAG:?set a tag}", environment: [:])
        }
        #expect(error?.variable == "SERVICE_TAG")
        #expect(error?.fragment == nil)
        #expect(error?.description == "required variable SERVICE_TAG is missing a value: set a tag")
    }

    @Test func invalidTemplateQuotesTheFragmentOnly() throws {
        let error = #expect(throws: InterpolationError.self) {
            try Interpolation.interpolate("echo ${VAR:x} and more text", environment: ["VAR": "v"])
        }
        #expect(error?.fragment == "${VAR:x}")
        #expect(error?.variable == nil)
    }

    @Test func collectsUnsetVariablesWithoutModifierOnce() throws {
        var unset: [String] = ["EARLIER"]
        let result = try Interpolation.interpolate(
            "$A ${B} ${A} ${C:-c} ${D-d} ${E:+e} $$F ${SET}",
            environment: ["SET": "x"],
            unsetVariables: &unset
        )
        #expect(result == "   c d  $F x")
        #expect(unset == ["EARLIER", "A", "B"])
    }

    @Test func reportsUnsetVariablesInsideUnusedDefaults() throws {
        var unset: [String] = []
        let result = try Interpolation.interpolate("${SET:-$UNUSED}", environment: ["SET": "x"], unsetVariables: &unset)
        #expect(result == "x")
        #expect(unset == ["UNUSED"])
    }

    @Test(arguments: [
        ("FOO", true), ("_", true), ("_foo9", true), ("a", true), ("SERVICE_TAG", true),
        ("", false), ("9FOO", false), ("FOO-BAR", false), ("FOO BAR", false), ("é", false), ("FOO.BAR", false),
    ])
    func validatesVariableNames(_ name: String, _ valid: Bool) {
        #expect(Interpolation.isValidVariableName(name) == valid)
    }
}
