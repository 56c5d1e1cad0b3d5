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

    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private static let mallopt: Mallopt? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: Mallopt.self)
    }()

    /// Keeps glibc from giving a heap's top back after every large `free`. With its default
    /// threshold (128 KiB) the store's writer threads released pages and faulted them in again at
    /// every transaction: 1.4 page faults per hot webhook call, a fifth of those threads' CPU
    /// (bare Hummingbird: none). Freed pages still go back after busy spells (`run()`). Setting the
    /// trim threshold freezes glibc's mmap threshold too, so that is set as well, to a size its
    /// sliding threshold reaches for the blocks the server frees.
    static func keepFreedPages(trimThreshold: Int32 = 8 << 20, mmapThreshold: Int32 = 1 << 20) {
        _ = mallopt?(-1, trimThreshold)  // M_TRIM_THRESHOLD
        _ = mallopt?(-3, mmapThreshold)  // M_MMAP_THRESHOLD
    }

    /// Returns whether memory was given back.
    @discardableResult
    static func run() -> Bool {
        (trim?(0) ?? 0) == 1
    }
}
