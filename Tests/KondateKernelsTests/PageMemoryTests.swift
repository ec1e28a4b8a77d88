import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import KondateKernels

/// ZeRO-2 holds one layer's gradients at a time by giving the pages of a reduced range back
/// (`PageMemory.release`); the pages the kernel keeps are counted with `mincore`, which sees only this
/// buffer (not the other tests running in the process).
@Suite("Page memory")
struct PageMemoryTests {
    static func residentPages(_ buffer: UnsafeMutableBufferPointer<Float>) -> Int {
        let bytes = buffer.count * MemoryLayout<Float>.stride
        let pages = (bytes + PageMemory.pageBytes - 1) / PageMemory.pageBytes
        var vector = [UInt8](repeating: 0, count: pages)
        let status = mincore(UnsafeMutableRawPointer(buffer.baseAddress!), bytes, &vector)
        precondition(status == 0, "mincore failed: errno \(errno)")
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    @Test func releasedPagesLeaveMemoryAndReadAsZeros() {
        let count = 1 << 20, perPage = PageMemory.pageBytes / MemoryLayout<Float>.stride
        let buffer = PageMemory.allocate(count)
        defer { PageMemory.deallocate(buffer) }
        #expect(Int(bitPattern: buffer.baseAddress!) % PageMemory.pageBytes == 0)
        #expect(Self.residentPages(buffer) == 0, "a fresh mapping holds no memory")
        #expect(buffer.allSatisfy { $0 == 0 })
        for i in 0..<count { buffer[i] = Float(i % 1000) + 1 }
        let pages = count / perPage
        #expect(Self.residentPages(buffer) == pages)

        // A range that starts and ends inside pages: the whole pages inside it go, its edges are zeroed.
        let range = (3 * perPage + 17)..<(200 * perPage + 5)
        PageMemory.release(buffer, range)
        let inside = 200 - 4   // pages 4 ..< 200
        #expect(Self.residentPages(buffer) == pages - inside)
        #expect(buffer[range].allSatisfy { $0 == 0 })
        #expect(buffer[range.lowerBound - 1] == Float((range.lowerBound - 1) % 1000) + 1)
        #expect(buffer[range.upperBound] == Float(range.upperBound % 1000) + 1)
        // Written again, the pages come back; a small range inside one page is only zeroed.
        for i in range { buffer[i] = 2 }
        #expect(Self.residentPages(buffer) == pages)
        PageMemory.release(buffer, 10..<20)
        #expect(buffer[9] == 10 && buffer[10] == 0 && buffer[19] == 0 && buffer[20] == 21)
        #expect(Self.residentPages(buffer) == pages)
        PageMemory.release(buffer, 0..<count)
        #expect(Self.residentPages(buffer) == 0 && buffer.allSatisfy { $0 == 0 })
    }
}
