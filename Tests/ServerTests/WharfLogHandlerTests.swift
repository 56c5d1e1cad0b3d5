import Logging
import Synchronization
import Testing
@testable import WharfServer

/// `WharfLogHandler` writes what `StreamLogHandler` writes, line for line.
struct WharfLogHandlerTests {
    final class Lines: TextOutputStream, Sendable {
        let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        /// The lines without their timestamps (the two handlers may cross a second).
        var untimed: [String] {
            text.withLock { $0 }.split(separator: "\n").map { String($0.drop { $0 != " " }) }
        }
    }

    @Test func writesWhatTheStreamHandlerWrites() {
        let ours = Lines(), theirs = Lines()
        var loggers = [Logger(label: "wharf-server") { WharfLogHandler(label: $0, output: ours) },
                       Logger(label: "wharf-server") { StreamLogHandler(label: $0, stream: theirs, metadataProvider: nil) }]
        for index in loggers.indices {
            loggers[index].logLevel = .debug
            loggers[index].info("no metadata")
            loggers[index][metadataKey: "hb.request.id"] = "42"
            loggers[index][metadataKey: "b"] = "2"
            loggers[index].info("logger metadata")
            loggers[index].debug("both, the entry's own wins", metadata: ["b": "3", "a": "1"])
            loggers[index].trace("below the level")
            loggers[index][metadataKey: "b"] = nil
            loggers[index].warning("one entry removed", metadata: ["job.id": "job_1"])
        }
        #expect(ours.untimed.count == 4)
        #expect(ours.untimed == theirs.untimed)
        #expect(ours.untimed[2] == " debug wharf-server: a=1 b=3 hb.request.id=42 [ServerTests] both, the entry's own wins")
    }
}
