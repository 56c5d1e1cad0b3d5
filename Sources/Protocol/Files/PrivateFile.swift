#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files only their owner may read (keys, tokens, jobs), written whole or not at all: a temporary
/// file next to the target is created with mode 0600 before a byte goes in, synced, and renamed over
/// the target.
///
/// Foundation's `FileManager.createFile(atPath:contents:attributes:)` writes the file first and sets
/// its mode afterwards, so for a moment a secret is readable with the umask's mode (0644).
public enum PrivateFile {
    #if canImport(Glibc)
    private static let systemWrite = Glibc.write
    #else
    private static let systemWrite = Darwin.write
    #endif

    public struct WriteError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes `bytes` to `path` (0600), replacing what is there.
    public static func write(_ bytes: [UInt8], to path: String) throws(WriteError) {
        let temporary = path + ".tmp"
        func failure(_ what: String) -> WriteError {
            WriteError(description: "cannot \(what) \(temporary): \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create") }
        // A leftover temporary file keeps the mode it had: make it 0600 before writing.
        guard fchmod(fd, 0o600) == 0 else {
            let error = failure("protect")
            close(fd)
            unlink(temporary)
            throw error
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                let error = failure("write")
                close(fd)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let error = failure("sync")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = WriteError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
            unlink(temporary)
            throw error
        }
    }
}
