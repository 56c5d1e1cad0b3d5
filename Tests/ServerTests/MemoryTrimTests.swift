import Testing
@testable import WharfServer

/// The heap trim the dispatcher runs after busy spells is found in this libc and gives freed pages back.
@Test func freedHeapPagesAreGivenBack() {
    // Free a run of blocks in the middle of the heap, behind one that stays, so that glibc cannot
    // return them by itself (it only trims the top of a heap). Tried three times: a dispatcher in a
    // test running beside this one may trim the same pages first.
    var trimmed = false
    for _ in 0..<3 where !trimmed {
        let blocks = (0..<20_000).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16) }
        for block in blocks { block.storeBytes(of: 1, as: UInt8.self) }
        let pinned = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        for block in blocks { block.deallocate() }
        trimmed = MemoryTrim.run()
        pinned.deallocate()
    }
    #expect(trimmed, "malloc_trim found and something given back")
}
