import Foundation

/// Data-parallel loops over `0..<count` cut into fixed-size chunks. The chunking depends only on
/// `count` and `grain`, never on the number of threads, so anything computed per chunk — and sums
/// combined in chunk order — is bitwise the same however many threads run it.
public enum Chunked {
    /// Calls `body` once per chunk, chunks running concurrently.
    public static func forEach(count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let chunks = (count + grain - 1) / grain
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let work: @Sendable (Int) -> Void = { [body = UncheckedBox(body)] c in
                body.value(c * grain ..< min(count, (c + 1) * grain))
            }
            DispatchQueue.concurrentPerform(iterations: chunks, execute: work)
        }
    }

    /// Σ over chunks of `body(chunk)`, added in chunk order.
    public static func sum(count: Int, grain: Int, _ body: (Range<Int>) -> Double) -> Double {
        let chunks = (count + grain - 1) / grain
        if chunks <= 1 { return count > 0 ? body(0..<count) : 0 }
        var partials = [Double](repeating: 0, count: chunks)
        partials.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            forEach(count: chunks, grain: 1) { range in
                let c = range.lowerBound
                base[c] = body(c * grain ..< min(count, (c + 1) * grain))
            }
        }
        return partials.reduce(0, +)
    }
}

/// Carries a non-Sendable value into a concurrent loop whose iterations touch disjoint data.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
