/// A double-array trie over byte strings (base/check arrays), built once from a set of keys; the fast
/// prefix and exact lookups behind SentencePiece encoding.
///
/// A state's child on byte `c` is `base + c` when that unit's `check` is the state. Every state's
/// `base + 255` lies inside the array (leaves have base 0), so a lookup needs no bounds check. The array
/// is immutable after `init` and owned by this object, which is why it may be shared across threads.
final class SentencePieceTrie: @unchecked Sendable {
    struct Unit {
        var base: Int32
        var check: Int32  // the parent state; -1 for a free unit, -2 for the root
        var value: Int32  // the key's value if a key ends here, else -1
    }

    private let units: UnsafeMutableBufferPointer<Unit>
    /// Number of keys.
    let count: Int
    /// Bit `b` is set when some key starts with byte `b`: a cheap reject before a lookup.
    private let firstBytes: (UInt64, UInt64, UInt64, UInt64)

    /// Builds the trie. Keys must be non-empty and distinct; `values[i]` belongs to `keys[i]`.
    init(keys: [[UInt8]], values: [Int32]) {
        precondition(keys.count == values.count)
        count = keys.count
        var first: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for key in keys {
            guard let b = key.first else { continue }
            switch b >> 6 {
            case 0: first.0 |= 1 << UInt64(b & 63)
            case 1: first.1 |= 1 << UInt64(b & 63)
            case 2: first.2 |= 1 << UInt64(b & 63)
            default: first.3 |= 1 << UInt64(b & 63)
            }
        }
        firstBytes = first
        var builder = Builder()
        builder.build(keys: keys, values: values)
        units = UnsafeMutableBufferPointer<Unit>.allocate(capacity: builder.units.count)
        _ = units.initialize(from: builder.units)
    }

    deinit {
        units.deallocate()
    }

    /// Whether some key starts with `byte`.
    @inline(__always)
    func mayStart(with byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return firstBytes.0 & bit != 0
        case 1: return firstBytes.1 & bit != 0
        case 2: return firstBytes.2 & bit != 0
        default: return firstBytes.3 & bit != 0
        }
    }

    /// The child of `state` on `byte`, or -1.
    @inline(__always)
    func child(_ state: Int32, _ byte: UInt8) -> Int32 {
        let next = Int(units[Int(state)].base) &+ Int(byte)
        return units[next].check == state ? Int32(truncatingIfNeeded: next) : -1
    }

    /// The value of the key ending at `state`, or -1.
    @inline(__always)
    func value(_ state: Int32) -> Int32 {
        units[Int(state)].value
    }

    /// The value of exactly the key `bytes[start..<end]`, or -1.
    @inline(__always)
    func exactMatch(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int32 {
        var state: Int32 = 0
        var i = start
        while i < end {
            state = child(state, bytes[i])
            if state < 0 { return -1 }
            i += 1
        }
        return start < end ? value(state) : -1
    }

    /// The value of exactly `key`, or -1.
    func exactMatch(_ key: [UInt8]) -> Int32 {
        key.withUnsafeBufferPointer { exactMatch($0, 0, $0.count) }
    }

    /// The length of the longest key that is a prefix of `bytes[start..<end]`, or 0.
    @inline(__always)
    func longestPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        guard start < end, mayStart(with: bytes[start]) else { return 0 }
        var state: Int32 = 0
        var longest = 0
        var i = start
        while i < end {
            state = child(state, bytes[i])
            if state < 0 { break }
            i += 1
            if value(state) >= 0 { longest = i - start }
        }
        return longest
    }

    /// Builds the units: keys sorted, then each state's children placed at the first base where all
    /// their units are free. Free units form a doubly linked list, so the search never walks over
    /// used ones.
    private struct Builder {
        var units: [Unit] = []
        private var nextFree: [Int32] = []
        private var previousFree: [Int32] = []
        private var firstFree: Int32 = -1
        private var lastFree: Int32 = -1

        mutating func build(keys: [[UInt8]], values: [Int32]) {
            let order = keys.indices.sorted { keys[$0].lexicographicallyPrecedes(keys[$1]) }
            grow(to: 512)
            take(0)
            units[0].check = -2
            // (state, range in `order` of the keys below this state, depth = bytes consumed)
            var stack: [(Int32, Range<Int>, Int)] = [(0, 0..<order.count, 0)]
            var labels: [UInt8] = []
            var groups: [Range<Int>] = []
            while let (state, range, depth) = stack.popLast() {
                var i = range.lowerBound
                // Sorted order puts the key that ends at this state first.
                if i < range.upperBound, keys[order[i]].count == depth {
                    units[Int(state)].value = values[order[i]]
                    i += 1
                }
                labels.removeAll(keepingCapacity: true)
                groups.removeAll(keepingCapacity: true)
                while i < range.upperBound {
                    let c = keys[order[i]][depth]
                    var j = i + 1
                    while j < range.upperBound, keys[order[j]][depth] == c { j += 1 }
                    labels.append(c)
                    groups.append(i..<j)
                    i = j
                }
                if labels.isEmpty {
                    units[Int(state)].base = 0
                    continue
                }
                let base = findBase(labels)
                units[Int(state)].base = Int32(base)
                for (c, group) in zip(labels, groups) {
                    let child = base + Int(c)
                    take(child)
                    units[child].check = state
                    stack.append((Int32(child), group, depth + 1))
                }
            }
            // Every base + 255 must be addressable.
            let maxBase = units.reduce(0) { max($0, Int($1.base)) }
            grow(to: maxBase + 256)
        }

        /// Adds free units up to `size`, linked at the end of the free list.
        private mutating func grow(to size: Int) {
            guard size > units.count else { return }
            let old = units.count
            units.append(contentsOf: repeatElement(Unit(base: 0, check: -1, value: -1), count: size - old))
            nextFree.append(contentsOf: repeatElement(-1, count: size - old))
            previousFree.append(contentsOf: repeatElement(-1, count: size - old))
            for i in old..<size {
                previousFree[i] = lastFree
                if lastFree >= 0 { nextFree[Int(lastFree)] = Int32(i) } else { firstFree = Int32(i) }
                lastFree = Int32(i)
            }
        }

        /// Removes a free unit from the free list.
        private mutating func take(_ i: Int) {
            let p = previousFree[i], n = nextFree[i]
            if p >= 0 { nextFree[Int(p)] = n } else { firstFree = n }
            if n >= 0 { previousFree[Int(n)] = p } else { lastFree = p }
        }

        private mutating func findBase(_ labels: [UInt8]) -> Int {
            let lowest = Int(labels[0])
            var position = firstFree
            while true {
                if position < 0 {
                    // No free unit fits: extend the array and try the new ones.
                    let old = units.count
                    grow(to: old + max(old / 2, 512))
                    position = Int32(old)
                }
                let base = Int(position) - lowest
                if base >= 0 {
                    grow(to: base + 256)
                    var fits = true
                    for c in labels.dropFirst() where units[base + Int(c)].check != -1 {
                        fits = false
                        break
                    }
                    if fits { return base }
                }
                position = nextFree[Int(position)]
            }
        }
    }
}
