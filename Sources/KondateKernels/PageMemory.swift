#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Float buffers taken from the system a page at a time, whose pages can be handed back while the
/// buffer stays allocated: ZeRO-2 keeps a whole-model gradient buffer for its offsets but holds in
/// memory only the layer being reduced (`release`).
///
/// The memory is an anonymous private mapping: it reads as zeros, and a page counts in the resident
/// set only once written. `release` zeroes a range and returns the whole pages inside it
/// (`madvise(MADV_DONTNEED)`, after which Linux maps them to zeros again); the partial pages at its
/// edges are zeroed in place.
public enum PageMemory {
    public static let pageBytes = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))

    /// `count` zeroed floats, page-aligned.
    public static func allocate(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let bytes = max(pageBytes, count * MemoryLayout<Float>.stride)
        let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else {
            fatalError("out of memory: mapping \(bytes) bytes for \(count) gradients failed (errno \(errno))")
        }
        return UnsafeMutableBufferPointer(start: address.bindMemory(to: Float.self, capacity: count), count: count)
    }

    public static func deallocate(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard let base = buffer.baseAddress else { return }
        munmap(UnsafeMutableRawPointer(base), max(pageBytes, buffer.count * MemoryLayout<Float>.stride))
    }

    /// Sets `buffer[range]` to zero, giving the whole pages inside it back to the system.
    public static func release(_ buffer: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>) {
        guard !range.isEmpty, let base = buffer.baseAddress else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "release: \(range) outside 0..<\(buffer.count)")
        let perPage = pageBytes / MemoryLayout<Float>.stride
        // `base` is page-aligned: whole pages are the multiples of `perPage` inside the range.
        let first = (range.lowerBound + perPage - 1) / perPage * perPage
        let last = range.upperBound / perPage * perPage
        #if os(Linux)
        if first < last {
            (base + range.lowerBound).update(repeating: 0, count: first - range.lowerBound)
            (base + last).update(repeating: 0, count: range.upperBound - last)
            let status = madvise(UnsafeMutableRawPointer(base + first), (last - first) * MemoryLayout<Float>.stride, MADV_DONTNEED)
            if status == 0 { return }
        }
        #endif
        (base + range.lowerBound).update(repeating: 0, count: range.count)
    }
}
