import Hummingbird
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `bare-hummingbird PORT`: POST /api/stacks/webhooks/{token} answers 202 with no body, on 127.0.0.1.
let arguments = CommandLine.arguments
guard arguments.count == 2, let port = Int(arguments[1]) else {
    print("usage: bare-hummingbird PORT")
    exit(2)
}
var logger = Logger(label: "bare-hummingbird")
logger.logLevel = .warning
let router = Router()
router.post("/api/stacks/webhooks/{token}") { _, _ -> HTTPResponse.Status in .accepted }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
try await app.runService()
