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

    /// Why a file that is there could not be read: it names the file and the cause.
    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a secret's text, or `nil` when there is no file at `path`.
    ///
    /// Only a missing file is `nil`: one that cannot be read (EACCES, EIO, a directory in its place)
    /// or is not UTF-8 text is an error, so that a caller never takes it for absent and makes a new
    /// secret over the old one.
    public static func readTextIfPresent(_ path: String) throws(ReadError) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0, errno == ENOENT { return nil }
        func failure() -> ReadError {
            ReadError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard fd >= 0 else { throw failure() }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw failure() }
            if count == 0 { break }
            bytes += buffer[0..<count]
            // A key or token is a few dozen bytes; anything this large is not one.
            guard bytes.count <= 1 << 20 else { throw ReadError(description: "cannot read \(path): over 1 MiB, not a key or token") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ReadError(description: "cannot read \(path): not UTF-8 text")
        }
        return text
    }

    /// fsync(2) of a directory, which makes the renames and deletions in it durable: after a power
    /// cut, a file renamed or deleted before this returned stays so.
    public static func syncDirectory(_ path: String) throws(WriteError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw WriteError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WriteError(description: "cannot sync \(path): \(String(cString: strerror(errno)))") }
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
