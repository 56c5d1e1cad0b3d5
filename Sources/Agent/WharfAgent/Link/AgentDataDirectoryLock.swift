import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An exclusive lock on `agent.lock` in an agent's data directory, held for the life of the process.
///
/// Two agents on one data directory would share its key (the server keeps only the last one to
/// connect and stops the other), its job journal (one would drop or run the other's jobs) and its
/// stack files, and both would drive the same compose projects at once. The second one to start
/// therefore refuses, naming the first one's process ID. An `flock` ends with its process, even
/// one killed with SIGKILL, so a crashed agent never leaves a stale lock behind; the descriptor is
/// close-on-exec, so compose and docker children do not hold it after the agent is gone.
public final class AgentDataDirectoryLock: Sendable {
    /// The lock file's name in the data directory.
    public static let fileName = "agent.lock"

    private let descriptor: Int32
    /// Why the lock could not be taken, when it could not for another reason than another agent
    /// holding it (a read-only directory, a file system without locks): the agent then runs
    /// without this check, as it did before it had one, and says so.
    public let problem: String?

    /// Takes the lock, or throws ``AgentSetupError`` when another process holds it.
    public init(_ directory: AgentDataDirectory) throws {
        let path = directory.url.appendingPathComponent(Self.fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            descriptor = -1
            problem = "could not open \(path): \(String(cString: strerror(errno)))"
            return
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            guard code == EWOULDBLOCK else {
                close(fd)
                descriptor = -1
                problem = "could not lock \(path): \(String(cString: strerror(code)))"
                return
            }
            let holder = Self.readHolder(fd)
            close(fd)
            let who = holder.map { "another wharf-agent (process \($0))" } ?? "another wharf-agent"
            throw AgentSetupError(message: "\(who) is using the data directory \(directory.url.path); one agent per data "
                                  + "directory: stop that agent first (systemctl stop wharf-agent, if it runs as the shipped unit)")
        }
        descriptor = fd
        problem = nil
        // Only informative (the lock is what counts): which process holds the directory.
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// The process ID the holder wrote, if it can be read.
    private static func readHolder(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text).flatMap { $0 > 0 ? $0 : nil }
    }
}
