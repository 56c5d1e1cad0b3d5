import Foundation
import Testing
import ZeroMQ

/// The threads that own sockets carry their names where the system shows them (`top -H`, `perf`,
/// `/proc`), not the name of the thread that happened to start them.
@Suite(.timeLimit(.minutes(1)))
struct ThreadNameTests {
    /// The names of this process's threads, as `/proc/self/task/*/comm` gives them.
    private func threadNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func aChannelsThreadHasTheChannelsName() async throws {
        let context = try ZMQContext()
        let name = "wharf-t-\(Int.random(in: 1000...9999))"
        let channel = try ZMQChannel(context: context, type: .dealer, name: name) { socket in
            try socket.bind("tcp://127.0.0.1:*")
        }
        // The thread names itself as it starts.
        let deadline = ContinuousClock.now + .seconds(5)
        while try !threadNames().contains(name), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try threadNames().contains(name))
        await channel.shutdown()
    }

    @Test func aLongNameIsCutToWhatTheSystemKeeps() async throws {
        let context = try ZMQContext()
        let name = "wharf-long-\(Int.random(in: 1000...9999))-channel-name"
        let channel = try ZMQChannel(context: context, type: .dealer, name: name) { socket in
            try socket.bind("tcp://127.0.0.1:*")
        }
        let kept = String(name.utf8.prefix(15))!
        let deadline = ContinuousClock.now + .seconds(5)
        while try !threadNames().contains(kept), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try threadNames().contains(kept))
        await channel.shutdown()
    }
}
