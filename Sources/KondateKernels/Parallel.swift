import Foundation

/// A small parallel-for for the CPU kernels.
///
/// Work is described as a number of chunks whose boundaries the caller fixes from the problem shape
/// alone (never from the thread count), and every chunk writes its own disjoint output or its own
/// scratch partial. Which thread runs which chunk therefore cannot change any result: kernels built on
/// `forEach` give bitwise identical output for every value of `threads`.
public enum Parallel {
    /// Lock-protected configuration, shared by every thread.
    private final class Configuration: @unchecked Sendable {
        let lock = NSLock()
        var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    private static let configuration = Configuration()

    /// The number of threads a parallel region may use (at least 1). Defaults to the number of active
    /// processors; setting it is safe from any thread and affects regions started afterwards.
    public static var threads: Int {
        get {
            configuration.lock.lock()
            defer { configuration.lock.unlock() }
            return configuration.threads
        }
        set {
            configuration.lock.lock()
            defer { configuration.lock.unlock() }
            configuration.threads = max(1, newValue)
        }
    }

    /// The next chunk index to hand out within one region.
    private final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var next = 0

        /// Claims the next chunk, or nil once all `count` chunks are claimed.
        @inline(__always)
        func claim(below count: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard next < count else { return nil }
            next += 1
            return next - 1
        }
    }

    /// Calls `body(i)` exactly once for every `i` in `0..<chunks`, on up to `threads` threads, and
    /// returns when all calls have finished. Chunks are claimed dynamically, so calls must be
    /// independent of each other and of the order in which they run. With one thread, or one chunk,
    /// everything runs in order on the calling thread.
    public static func forEach(chunks: Int, _ body: (Int) -> Void) {
        guard chunks > 0 else { return }
        let workers = min(threads, chunks)
        if workers == 1 {
            for i in 0..<chunks { body(i) }
            return
        }
        let counter = Counter()
        // `concurrentPerform` returns only after every iteration has finished, so `body` never outlives
        // this call even though the closure type has to be escaping and Sendable to cross threads.
        withoutActuallyEscaping(body) { body in
            let shared = SharedBody(body: body)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while let i = counter.claim(below: chunks) { shared.body(i) }
            }
        }
    }

    /// Carries a region's body to the worker threads. The body only touches memory that its chunk
    /// owns (or reads shared inputs), which is what makes sharing it across threads sound.
    private struct SharedBody: @unchecked Sendable {
        let body: (Int) -> Void
    }

    /// Splits `0..<count` into consecutive ranges of `chunkSize` (the last may be shorter) and calls
    /// `body` once per range, as `forEach`. `chunkSize` must depend only on the problem shape.
    @inline(__always)
    public static func forEach(count: Int, chunkSize: Int, _ body: (Range<Int>) -> Void) {
        let size = max(1, chunkSize)
        forEach(chunks: chunkCount(count, size)) { i in
            body((i * size)..<min(count, (i + 1) * size))
        }
    }

    /// The number of chunks of `chunkSize` needed to cover `count` items.
    @inline(__always)
    public static func chunkCount(_ count: Int, _ chunkSize: Int) -> Int {
        count <= 0 ? 0 : (count + max(1, chunkSize) - 1) / max(1, chunkSize)
    }

    /// Σ of `body(range)` over the ranges of `forEach(count:chunkSize:)`, added in chunk order, so
    /// the sum is the same for every thread count.
    public static func sum(count: Int, chunkSize: Int, _ body: (Range<Int>) -> Double) -> Double {
        let size = max(1, chunkSize), chunks = chunkCount(count, size)
        guard chunks > 1 else { return chunks == 1 ? body(0..<count) : 0 }
        var partials = [Double](repeating: 0, count: chunks)
        partials.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            forEach(chunks: chunks) { i in base[i] = body((i * size)..<min(count, (i + 1) * size)) }
        }
        return partials.reduce(0, +)
    }
}
