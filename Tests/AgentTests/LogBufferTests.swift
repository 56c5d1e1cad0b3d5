import Testing
@testable import WharfAgent

/// The agent's buffer of job output between two sends to the server.
struct LogBufferTests {
    @Test func linesOverTheLimitBetweenTwoSendsAreCountedInTheLog() {
        let buffer = LogBuffer(base: 1000, maxPendingLines: 3)
        for n in 1...5 { buffer.append("line \(n)", to: "job_a") }
        buffer.append("other", to: "job_b")
        let chunks = buffer.drain().sorted { $0.jobId < $1.jobId }
        #expect(chunks.map(\.jobId) == ["job_a", "job_b"])
        #expect(chunks[0].lines == ["line 1", "line 2", "line 3",
                                    "... 2 lines left out here: over 3 lines between two sends to the server"])
        #expect(chunks[1].lines == ["other"])
        #expect(chunks.map(\.seq) == [1000, 1000])

        // The next send starts afresh, numbered after the first.
        buffer.append("line 6", to: "job_a")
        let next = buffer.drain()
        #expect(next.map(\.lines) == [["line 6"]])
        #expect(next.map(\.seq) == [1001])
        #expect(buffer.drain().isEmpty)
    }
}
