import Testing
@testable import WharfCLI

struct DotEnvTests {
    /// One line (or a few) of a .env file and what docker compose makes of it.
    @Test(arguments: [
        ("A=1", ["A": "1"]),
        ("A=1\nB=2\n", ["A": "1", "B": "2"]),
        ("# a comment\n\nA=1\n   # indented comment", ["A": "1"]),
        ("export A=1", ["A": "1"]),
        ("A = spaced value  ", ["A": "spaced value"]),
        ("A=", ["A": ""]),
        ("A=value # comment", ["A": "value"]),
        ("A=value#not-a-comment", ["A": "value#not-a-comment"]),
        ("A=#ff6600", ["A": "#ff6600"]),
        ("A= #abc", ["A": "#abc"]),
        ("A=\t#abc # comment", ["A": "#abc"]),
        ("A=#", ["A": "#"]),
        ("A=x\t#y", ["A": "x\t#y"]),
        ("A=#ff6600\nB=2", ["A": "#ff6600", "B": "2"]),
        ("A=a=b=c", ["A": "a=b=c"]),
        ("A='single # quoted $B'", ["A": "single # quoted $B"]),
        ("A=\"double # quoted\" # comment", ["A": "double # quoted"]),
        ("A=\"line1\\nline2\\t\\\"q\\\"\"", ["A": "line1\nline2\t\"q\""]),
        ("A='no \\n escapes'", ["A": "no \\n escapes"]),
        ("A=\"multi\nline\"\nB=2", ["A": "multi\nline", "B": "2"]),
        ("A=1\r\nB=2\r\n", ["A": "1", "B": "2"]),
        ("A=1\nB=${A}-x\nC=\"$A$A\"\nD='$A'", ["A": "1", "B": "1-x", "C": "11", "D": "$A"]),
        ("A=${UNSET:-fallback}\nB=${UNSET-dash}\nC=${SHELL_VAR:+alt}", ["A": "fallback", "B": "dash", "C": "alt"]),
        ("A=$$literal\nB=\"\\$literal\"", ["A": "$literal", "B": "$literal"]),
        ("A=${SHELL_VAR}", ["A": "from shell"]),
        ("SHELL_VAR=file\nB=$SHELL_VAR", ["SHELL_VAR": "file", "B": "from shell"]),
        ("SHELL_VAR\nUNSET_VAR", ["SHELL_VAR": "from shell"]),
        ("A=1\nA=2", ["A": "2"]),
        ("A=price: $5", ["A": "price: $5"]),
    ])
    func parsesLikeCompose(text: String, expected: [String: String]) throws {
        let parsed = try DotEnv.parse(text) { ["SHELL_VAR": "from shell"][$0] }
        #expect(parsed == expected)
    }

    @Test(arguments: [
        ("A=1\n1BAD=2", 2),
        ("A-B=1", 1),
        ("A=\"never closed\nB=2", 1),
        ("A='x' trailing", 1),
        ("A=${UNCLOSED", 1),
        ("A=${REQUIRED:?must be set}", 1),
        ("A B=1", 1),
    ])
    func problemsNameTheLine(text: String, line: Int) {
        let error = #expect(throws: CLIError.self) { try DotEnv.parse(text, name: "prod.env") }
        #expect(error?.code == "invalid_env_file")
        #expect(error?.message.hasPrefix("prod.env line \(line):") == true, "\(error?.message ?? "")")
    }

    @Test func aLaterEnvFileFindsTheEarlierFilesVariablesAfterTheShellsAndOverridesThem() throws {
        let parsed = try DotEnv.parse(files: [
            (name: "base.env", text: "REGISTRY=r.example.com\nTAG=1\nSHELL_VAR=base"),
            (name: "app.env", text: "IMAGE=${REGISTRY}/shop:${TAG}\nTAG=2\nFROM=$SHELL_VAR\nREGISTRY"),
        ]) { ["SHELL_VAR": "from shell"][$0] }
        #expect(parsed == ["REGISTRY": "r.example.com", "TAG": "2", "SHELL_VAR": "base",
                           "IMAGE": "r.example.com/shop:1", "FROM": "from shell"])
        let error = #expect(throws: CLIError.self) {
            try DotEnv.parse(files: [(name: "a.env", text: "A=1"), (name: "b.env", text: "B=${A}\n1BAD=x")])
        }
        #expect(error?.message.hasPrefix("b.env line 2:") == true, "\(error?.message ?? "")")
    }
}
