import WharfCLI

await WharfCommand.main()
