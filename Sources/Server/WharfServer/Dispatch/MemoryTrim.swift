import Foundation

/// Gives the C heap's free pages back to the system (glibc's `malloc_trim`), found at run time so
/// that a libc without it simply has no effect.
///
/// A burst of agent messages (10,000 agents connecting, each hello decoded and stored) leaves the
/// heap full of freed blocks between live ones; glibc only returns the top of a heap by itself, so
/// the server's RSS stayed tens of MiB above what it used. The dispatcher trims after busy spells.
enum MemoryTrim {
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let trim: Trim? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
    }()

    /// Returns whether memory was given back.
    @discardableResult
    static func run() -> Bool {
        (trim?(0) ?? 0) == 1
    }
}
