import WharfCLI

await WharfCommand.runCommandLine()
