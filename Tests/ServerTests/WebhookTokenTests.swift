import Testing
import WharfServer

/// `WebhookToken`: random UUID v4 tokens and the cheap shape check of path tokens.
struct WebhookTokenTests {
    @Test func generatedTokensAreLowercaseUUIDv4AndDistinct() {
        var seen = Set<String>()
        for _ in 0..<2000 {
            let token = WebhookToken.generate().rawValue
            #expect(WebhookToken.isWellFormed(token))
            #expect(token == token.lowercased())
            let characters = Array(token)
            #expect(characters[14] == "4", "version nibble of \(token)")
            #expect("89ab".contains(characters[19]), "variant nibble of \(token)")
            seen.insert(token)
        }
        #expect(seen.count == 2000)
    }

    /// A generator that returns fixed words, to pin the byte layout.
    struct FixedGenerator: RandomNumberGenerator {
        var words: [UInt64]
        mutating func next() -> UInt64 { self.words.removeFirst() }
    }

    @Test func byteLayoutFollowsRFC9562() {
        var allOnes = FixedGenerator(words: [.max, .max])
        #expect(WebhookToken.generate(using: &allOnes).rawValue == "ffffffff-ffff-4fff-bfff-ffffffffffff")
        var zeros = FixedGenerator(words: [0, 0])
        #expect(WebhookToken.generate(using: &zeros).rawValue == "00000000-0000-4000-8000-000000000000")
        var counting = FixedGenerator(words: [0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908])
        #expect(WebhookToken.generate(using: &counting).rawValue == "00010203-0405-4607-8809-0a0b0c0d0e0f")
    }

    @Test(arguments: [
        ("8f14e45f-ceea-467a-9af3-8a4d1e2b3c4d", true),
        ("8F14E45F-CEEA-467A-9AF3-8A4D1E2B3C4D", true),
        ("00000000-0000-0000-0000-000000000000", true),
        ("", false),
        ("8f14e45f-ceea-467a-9af3-8a4d1e2b3c4", false),
        ("8f14e45f-ceea-467a-9af3-8a4d1e2b3c4dd", false),
        ("8f14e45fceea467a9af38a4d1e2b3c4d", false),
        ("8f14e45f-ceea-467a-9af3_8a4d1e2b3c4d", false),
        ("8f14e45g-ceea-467a-9af3-8a4d1e2b3c4d", false),
        ("{8f14e45f-ceea-467a-9af3-8a4d1e2b3c4}", false),
        ("8f14e45f-ceea-467a-9af3-8a4d1e2b3cé", false),
        ("../../../../../../../../etc/passwd/xx", false),
    ])
    func shapeCheck(_ text: String, wellFormed: Bool) {
        #expect(WebhookToken.isWellFormed(text) == wellFormed)
        #expect((WebhookToken(text) != nil) == wellFormed)
    }

    @Test func pathTokensAreLowercased() throws {
        let token = try #require(WebhookToken("8F14E45F-CEEA-467A-9AF3-8A4D1E2B3C4D"))
        #expect(token.rawValue == "8f14e45f-ceea-467a-9af3-8a4d1e2b3c4d")
        #expect(token == WebhookToken("8f14e45f-ceea-467a-9af3-8a4d1e2b3c4d"))
    }

    @Test func tokensDoNotPrintThemselves() throws {
        let token = try #require(WebhookToken("8f14e45f-ceea-467a-9af3-8a4d1e2b3c4d"))
        for text in ["\(token)", String(describing: token), String(reflecting: token)] {
            #expect(!text.contains("8f14e45f"))
            #expect(text.hasSuffix("3c4d"))
        }
        var dumped = ""
        dump(token, to: &dumped)
        #expect(!dumped.contains("8f14e45f"))
    }
}
