import Testing
@testable import WharfCLI

struct CLIParsingTests {
    @Test func theCommandIsNamedWharf() {
        #expect(WharfCommand.configuration.commandName == "wharf")
    }
}
