import Foundation
import Synchronization

/// The fleet's JSON-lines log (`--fleet-log`): one line per finished job and one per fleet event.
///
/// A job line, written when the server acknowledges the job's result:
/// `{"job":"job_…","env":"env_…","agent":"fleet-7","received":1732870000.123456,"resultSent":…,"resultAcked":…}`
/// with times in seconds since 1970 (CLOCK_REALTIME, µs), so other processes on the host can
/// compare them with their own clocks. An event line: `{"event":"connected","agents":1000,"seconds":0.8,…}`.
/// Lines are buffered and written at most every 50 ms by the fleet's thread, and at exit.
final class FleetLog: Sendable {
    private let handle: FileHandle?
    private let buffer = Mutex<[UInt8]>([])

    /// Opens (and truncates) `url`; with nil, every call does nothing.
    init(url: URL?) throws {
        guard let url else {
            handle = nil
            return
        }
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw FleetError("cannot create the fleet log \(url.path)")
        }
        handle = try FileHandle(forWritingTo: url)
    }

    deinit { try? handle?.close() }

    /// Records a job whose result the server acknowledged.
    func job(_ times: FleetAgent.JobTimes, agent: FleetAgent) {
        guard handle != nil else { return }
        let line = "{\"job\":\"\(Self.escaped(times.jobId))\",\"env\":\"\(Self.escaped(agent.environmentId))\",\"agent\":\"\(Self.escaped(agent.name))\","
            + "\"received\":\(Self.seconds(times.received)),\"resultSent\":\(Self.seconds(times.resultSent)),"
            + "\"resultAcked\":\(Self.seconds(times.resultAcked))}\n"
        buffer.withLock { $0.append(contentsOf: line.utf8) }
    }

    /// Records a fleet event with numeric fields, and writes everything out at once.
    func event(_ name: String, _ fields: [(String, Double)]) {
        guard handle != nil else { return }
        var line = "{\"event\":\"\(Self.escaped(name))\",\"at\":\(Self.seconds(FleetClock.wall()))"
        for (key, value) in fields {
            line += ",\"\(Self.escaped(key))\":" + (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value))
        }
        line += "}\n"
        buffer.withLock { $0.append(contentsOf: line.utf8) }
        flush()
    }

    /// Writes the buffered lines.
    func flush() {
        guard let handle else { return }
        let bytes = buffer.withLock { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if !bytes.isEmpty { try? handle.write(contentsOf: bytes) }
    }

    private static func seconds(_ value: Double) -> String {
        let micros = Int64((value * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    private static func escaped(_ text: String) -> String {
        text.contains(where: { $0 == "\"" || $0 == "\\" || $0.asciiValue.map { $0 < 0x20 } == true })
            ? text.unicodeScalars.map { $0 == "\"" || $0 == "\\" ? "\\\($0)" : $0.value < 0x20 ? " " : String($0) }.joined()
            : text
    }
}

/// The two clocks the fleet uses.
enum FleetClock {
    /// Seconds since 1970 (CLOCK_REALTIME): comparable across processes.
    static func wall() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }

    /// Seconds on CLOCK_MONOTONIC: for intervals.
    static func monotonic() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }
}
