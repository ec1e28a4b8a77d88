import KondateSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tokenizer.json model: turns one pre-tokenized word into ids.
protocol HFModel: AnyObject, Sendable {
    /// Appends the ids of `word` (UTF-8; raw bytes standing for GPT-2 characters when `byteLevel`),
    /// remembering words in `cache` (the calling thread's, from `HFThreadCaches.cache(for: cacheID)`).
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, cache: HFWordCache, into out: inout [Int32])
    /// Identifies this model's word caches.
    var cacheID: UInt64 { get }
    /// Token bytes → id. Keys are bytes, not Strings: Swift compares Strings by canonical
    /// equivalence, and a vocabulary may hold "が" both precomposed and decomposed as two tokens.
    var vocabulary: HFVocab { get }
    var idToToken: [String?] { get }
    /// Number of vocabulary entries (`Model::get_vocab_size`, which the added-token ids start from).
    var entryCount: Int { get }
    var unknownID: Int32? { get }
}

/// Token bytes → id.
typealias HFVocab = [[UInt8]: Int32]

/// The `<0xHH>` id of every byte, -1 where the vocabulary has none.
func hfByteFallbackIDs(_ vocab: HFVocab) -> [Int32] {
    (0..<256).map { b in vocab[Array(String(format: "<0x%02X>", b).utf8)] ?? -1 }
}

// MARK: - Word cache

/// Per-thread caches of word → ids, so that `encode` stays lock-free under `encodeBatch`.
/// An open-addressing table over fixed arenas; looking a word up allocates nothing. Storage is
/// reached through `let` pointers so hot lookups pay no exclusivity checks. When an arena fills up
/// the cache starts over. Words of 256 bytes or more are not cached (as in tokenizers).
final class HFWordCache {
    private struct Entry {
        var hash: UInt64
        var keyStart: Int32
        var keyLength: Int32
        var valueStart: Int32
        var valueLength: Int32
    }

    static let maxWordLength = 256
    private let capacity = 1 << 15
    private let keyCapacity = 1 << 21
    private let valueCapacity = 1 << 19
    private let slotCount = 1 << 16
    private let slots: UnsafeMutablePointer<Int32>
    private let entries: UnsafeMutablePointer<Entry>
    private let keys: UnsafeMutablePointer<UInt8>
    private let values: UnsafeMutablePointer<Int32>
    /// Entries, key bytes and values in use.
    private let used: UnsafeMutablePointer<Int>

    init() {
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        entries = .allocate(capacity: capacity)
        keys = .allocate(capacity: keyCapacity)
        values = .allocate(capacity: valueCapacity)
        used = .allocate(capacity: 3)
        used.initialize(repeating: 0, count: 3)
    }

    deinit {
        slots.deallocate()
        entries.deallocate()
        keys.deallocate()
        values.deallocate()
        used.deallocate()
    }

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Appends the cached ids of `word` to `out`; false when absent.
    func lookup(_ word: UnsafeBufferPointer<UInt8>, hash h: UInt64, into out: inout [Int32]) -> Bool {
        let mask = slotCount - 1
        var s = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
        while true {
            let e = Int(slots[s])
            if e < 0 { return false }
            let entry = entries[e]
            if entry.hash == h && Int(entry.keyLength) == word.count,
               let base = word.baseAddress, memcmp(keys + Int(entry.keyStart), base, word.count) == 0 {
                out.append(contentsOf: UnsafeBufferPointer(start: values + Int(entry.valueStart), count: Int(entry.valueLength)))
                return true
            }
            s = (s + 1) & mask
        }
    }

    func insert(_ word: UnsafeBufferPointer<UInt8>, hash h: UInt64, ids: ArraySlice<Int32>) {
        guard word.count < HFWordCache.maxWordLength, ids.count < valueCapacity / 4, let base = word.baseAddress else { return }
        if used[0] >= capacity || used[1] + word.count > keyCapacity || used[2] + ids.count > valueCapacity {
            slots.update(repeating: -1, count: slotCount)
            used.update(repeating: 0, count: 3)
        }
        let mask = slotCount - 1
        var s = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
        while slots[s] >= 0 { s = (s + 1) & mask }
        let n = used[0], k = used[1], v = used[2]
        slots[s] = Int32(n)
        entries[n] = Entry(hash: h, keyStart: Int32(k), keyLength: Int32(word.count), valueStart: Int32(v),
                           valueLength: Int32(ids.count))
        (keys + k).update(from: base, count: word.count)
        ids.withUnsafeBufferPointer { p in
            if let b = p.baseAddress { (values + v).update(from: b, count: p.count) }
        }
        used[0] = n + 1
        used[1] = k + word.count
        used[2] = v + ids.count
    }
}

/// Finds the calling thread's cache for a model id (one pthread key for all models).
enum HFThreadCaches {
    private final class Box {
        var caches: [UInt64: HFWordCache] = [:]
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { pointer in
            #if canImport(Darwin)
            Unmanaged<AnyObject>.fromOpaque(pointer).release()
            #else
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
            #endif
        }
        return k
    }()

    private static let counter = HFCounter()

    /// A fresh id for a model instance (never reused, so a dead model's cache is never read).
    static func newID() -> UInt64 { counter.next() }

    static func cache(for id: UInt64) -> HFWordCache {
        let box: Box
        if let raw = pthread_getspecific(key) {
            box = Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue()
        } else {
            box = Box()
            pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        }
        if let c = box.caches[id] { return c }
        // Models that were dropped leave their caches behind; bound how many a thread keeps.
        if box.caches.count >= 8 { box.caches.removeAll() }
        let c = HFWordCache()
        box.caches[id] = c
        return c
    }
}

final class HFCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    func next() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value
    }
}

// MARK: - BPE

/// `models/bpe`: merges by rank, leftmost first, over the word's characters (or bytes).
final class HFBPEModel: HFModel, @unchecked Sendable {
    let vocabulary: HFVocab
    let idToToken: [String?]
    let entryCount: Int
    let unknownID: Int32?
    /// Single-scalar tokens by scalar value (the common initial symbols).
    private let scalarIDs: [UInt32: Int32]
    private let asciiIDs: [Int32]
    /// The id of each byte's GPT-2 character.
    private let byteLevelIDs: [Int32]
    private let byteFallbackIDs: [Int32]
    /// (left << 32 | right) → (rank << 32 | new id).
    private let merges: HFPairTable
    private let fuseUnknown: Bool
    private let byteFallback: Bool
    private let ignoreMerges: Bool
    private let prefix: String?
    private let suffix: String?
    let cacheID = HFThreadCaches.newID()

    /// `vocabEntries` in file order: a token listed twice keeps its last id (a HashMap insert).
    init(vocabEntries: [(String, Int32)], merges mergeList: [(String, String)], unknown: String?, fuseUnknown: Bool,
         byteFallback: Bool, ignoreMerges: Bool, prefix: String?, suffix: String?, file: String) throws {
        var vocab = HFVocab(minimumCapacity: vocabEntries.count)
        for (token, id) in vocabEntries { vocab[Array(token.utf8)] = id }
        vocabulary = vocab
        entryCount = vocab.count
        var maxID = -1
        for (_, id) in vocab { maxID = max(maxID, Int(id)) }
        // Ids index a table; a stray huge id must not allocate gigabytes.
        guard maxID < max(1 << 24, vocab.count * 2) else {
            throw FileError(.tokenizer, file, "model.vocab has id \(maxID), far beyond its \(vocab.count) entries")
        }
        var reverse = [String?](repeating: nil, count: maxID + 1)
        for (token, id) in vocabEntries where vocab[Array(token.utf8)] == id { reverse[Int(id)] = token }
        idToToken = reverse
        var scalars = [UInt32: Int32]()
        for (token, id) in vocab {
            let u = String(decoding: token, as: UTF8.self).unicodeScalars
            if u.count == 1, let c = u.first { scalars[c.value] = id }
        }
        scalarIDs = scalars
        asciiIDs = (0..<128).map { scalars[UInt32($0)] ?? -1 }
        byteLevelIDs = (0..<256).map { scalars[HFUnicode.byteToScalar[$0]] ?? -1 }
        byteFallbackIDs = hfByteFallbackIDs(vocab)
        if let unknown {
            guard let id = vocab[Array(unknown.utf8)] else {
                throw FileError(.tokenizer, file, "model.unk_token '\(unknown)' is not in the vocabulary")
            }
            unknownID = id
        } else {
            unknownID = nil
        }
        // The rank is the list index; a pair listed twice keeps its last rank (a HashMap insert).
        var table = [UInt64: UInt64]()
        table.reserveCapacity(mergeList.count)
        for (rank, (a, b)) in mergeList.enumerated() {
            guard let left = vocab[Array(a.utf8)] else { throw FileError(.tokenizer, file, "merge '\(a) \(b)': '\(a)' is not in the vocabulary") }
            guard let right = vocab[Array(b.utf8)] else { throw FileError(.tokenizer, file, "merge '\(a) \(b)': '\(b)' is not in the vocabulary") }
            var rightPart = Array(b.utf8)
            if let prefix, rightPart.starts(with: prefix.utf8) { rightPart.removeFirst(prefix.utf8.count) }
            let merged = Array(a.utf8) + rightPart
            guard let new = vocab[merged] else {
                throw FileError(.tokenizer, file, "merge '\(a) \(b)': '\(String(decoding: merged, as: UTF8.self))' is not in the vocabulary")
            }
            table[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))] =
                UInt64(rank) << 32 | UInt64(UInt32(bitPattern: new))
        }
        merges = HFPairTable(table)
        self.fuseUnknown = fuseUnknown
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        self.prefix = prefix
        self.suffix = suffix
    }

    func tokenize(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, cache: HFWordCache, into out: inout [Int32]) {
        if word.isEmpty { return }
        if ignoreMerges {
            let text = byteLevel ? HFBPEModel.mapped(word) : Array(word)
            if let id = vocabulary[text] { out.append(id); return }
        }
        let h = HFWordCache.hash(word) &+ (byteLevel ? 1 : 0)
        if cache.lookup(word, hash: h, into: &out) { return }
        let start = out.count
        var symbols = initialSymbols(word, byteLevel: byteLevel)
        merge(&symbols)
        out.append(contentsOf: symbols)
        cache.insert(word, hash: h, ids: out[start...])
    }

    static func mapped(_ word: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var bytes = [UInt8]()
        for b in word { bytes += HFUnicode.byteToUTF8[Int(b)] }
        return bytes
    }

    /// BPE::merge_word's first half: one symbol per character, byte fallback or (fused) unk otherwise.
    private func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool) -> [Int32] {
        var symbols = [Int32]()
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false  // an unk symbol waiting to be added (it may fuse with the next)
        var i = 0
        let n = word.count
        while i < n {
            let isFirst = i == 0
            var charBytes: [UInt8]
            var id: Int32 = -1
            var len: Int
            if byteLevel {
                len = 1
                if prefix == nil && suffix == nil {
                    id = byteLevelIDs[Int(word[i])]
                    charBytes = id >= 0 ? [] : HFUnicode.byteToUTF8[Int(word[i])]
                } else {
                    charBytes = HFUnicode.byteToUTF8[Int(word[i])]
                }
            } else {
                let (c, l) = HFUnicode.decode(word, i)
                len = l
                if prefix == nil && suffix == nil {
                    id = c < 0x80 ? asciiIDs[Int(c)] : (scalarIDs[c] ?? -1)
                    charBytes = id >= 0 ? [] : Array(word[i..<i + l])
                } else {
                    charBytes = Array(word[i..<i + l])
                }
            }
            let isLast = i + len >= n
            if prefix != nil || suffix != nil {
                var s = charBytes
                if !isFirst, let prefix { s = Array(prefix.utf8) + s }
                if isLast, let suffix { s += Array(suffix.utf8) }
                charBytes = s
                id = vocabulary[s] ?? -1
            }
            i += len
            if id >= 0 {
                if pendingUnknown, let unk = unknownID { symbols.append(unk); pendingUnknown = false }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let ids = charBytes.map { byteFallbackIDs[Int($0)] }
                if !ids.contains(-1) {
                    // As in tokenizers, a pending unk is not flushed before byte-fallback tokens.
                    symbols += ids
                    continue
                }
            }
            guard let unk = unknownID else { continue }  // no unk token: the character is dropped
            if pendingUnknown && !fuseUnknown { symbols.append(unk) }
            pendingUnknown = true
        }
        if pendingUnknown, let unk = unknownID { symbols.append(unk) }
        return symbols
    }

    @inline(__always)
    private static func lookup(_ table: HFPairTable, _ a: Int32, _ b: Int32) -> UInt64? {
        table.get(UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)))
    }

    /// Word::merge_all: repeatedly merges the lowest-ranked adjacent pair, leftmost first.
    private func merge(_ symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count > 48 { mergeWithHeap(&symbols); return }
        // A local copy: calling through the stored struct would retain its arrays on every lookup.
        let table = merges
        func lookup(_ a: Int32, _ b: Int32) -> UInt64? { HFBPEModel.lookup(table, a, b) }
        var ranks = [UInt32](repeating: .max, count: symbols.count - 1)
        var news = [Int32](repeating: -1, count: symbols.count - 1)
        for i in 0..<symbols.count - 1 {
            if let v = lookup(symbols[i], symbols[i + 1]) { ranks[i] = UInt32(v >> 32); news[i] = Int32(bitPattern: UInt32(truncatingIfNeeded: v)) }
        }
        while true {
            var best = -1
            var bestRank = UInt32.max
            for i in 0..<ranks.count where ranks[i] < bestRank { bestRank = ranks[i]; best = i }
            if best < 0 { return }
            symbols[best] = news[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            news.remove(at: best)
            if best > 0 {
                if let v = lookup(symbols[best - 1], symbols[best]) {
                    ranks[best - 1] = UInt32(v >> 32); news[best - 1] = Int32(bitPattern: UInt32(truncatingIfNeeded: v))
                } else {
                    ranks[best - 1] = .max
                }
            }
            if best < ranks.count {
                if let v = lookup(symbols[best], symbols[best + 1]) {
                    ranks[best] = UInt32(v >> 32); news[best] = Int32(bitPattern: UInt32(truncatingIfNeeded: v))
                } else {
                    ranks[best] = .max
                }
            }
        }
    }

    /// The same merge order with a priority queue over (rank, position), for long words. A queued
    /// entry is stale when the pair now at its position has another rank (ranks identify pairs).
    private func mergeWithHeap(_ symbols: inout [Int32]) {
        let table = merges
        let n = symbols.count
        var next = [Int32](repeating: -1, count: n)
        var prev = [Int32](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        var heap = HFMergeHeap()
        for i in 0..<n {
            prev[i] = Int32(i - 1)
            next[i] = i + 1 < n ? Int32(i + 1) : -1
            if i + 1 < n, let v = HFBPEModel.lookup(table, symbols[i], symbols[i + 1]) {
                heap.push(v & 0xFFFF_FFFF_0000_0000 | UInt64(i))
            }
        }
        while let top = heap.pop() {
            let rank = top >> 32
            let pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = Int(next[pos])
            guard let v = HFBPEModel.lookup(table, symbols[pos], symbols[right]), v >> 32 == rank else { continue }
            symbols[pos] = Int32(bitPattern: UInt32(truncatingIfNeeded: v))
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
            if prev[pos] >= 0, let w = HFBPEModel.lookup(table, symbols[Int(prev[pos])], symbols[pos]) {
                heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(prev[pos]))
            }
            if next[pos] >= 0, let w = HFBPEModel.lookup(table, symbols[pos], symbols[Int(next[pos])]) {
                heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(pos))
            }
        }
        var result = [Int32]()
        var i = 0
        while i >= 0 { result.append(symbols[i]); i = Int(next[i]) }
        symbols = result
    }
}

/// An open-addressing map for merge pairs with a multiplicative hash (Swift's seeded SipHash on
/// every pair lookup was a tenth of the encode time).
struct HFPairTable: Sendable {
    private let keys: [UInt64]
    private let values: [UInt64]
    private let shift: UInt64
    private static let empty = UInt64.max

    init(_ map: [UInt64: UInt64]) {
        var bits: UInt64 = 4
        while (1 << bits) < map.count * 2 { bits += 1 }
        let size = 1 << Int(bits)
        var k = [UInt64](repeating: HFPairTable.empty, count: size)
        var v = [UInt64](repeating: 0, count: size)
        shift = 64 - bits
        // Insert in key order so the layout does not depend on the dictionary's iteration order.
        for (key, value) in map.sorted(by: { $0.key < $1.key }) {
            var i = Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while k[i] != HFPairTable.empty { i = (i + 1) & (size - 1) }
            k[i] = key
            v[i] = value
        }
        keys = k
        values = v
    }

    @inline(__always)
    func get(_ key: UInt64) -> UInt64? {
        let mask = keys.count - 1
        var i = Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == HFPairTable.empty { return nil }
            i = (i + 1) & mask
        }
    }
}

/// A binary min-heap of merge candidates packed as rank << 32 | position, so the order is
/// (rank, then leftmost position) as in Word::merge_all.
struct HFMergeHeap {
    private var items: [UInt64] = []

    mutating func push(_ item: UInt64) {
        items.append(item)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            let x = h[i]
            while i > 0 {
                let parent = (i - 1) / 2
                if h[parent] <= x { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = x
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items.withUnsafeMutableBufferPointer { h in
            var i = 0
            let n = h.count
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var m = l
                if l + 1 < n && h[l + 1] < h[l] { m = l + 1 }
                if h[m] >= last { break }
                h[i] = h[m]
                i = m
            }
            h[i] = last
        }
        return first
    }
}

// MARK: - Unigram

/// `models/unigram`: the Viterbi best path over the vocabulary's pieces (encode_optimized).
final class HFUnigramModel: HFModel, @unchecked Sendable {
    let vocabulary: HFVocab
    let idToToken: [String?]
    let entryCount: Int
    let unknownID: Int32?
    private let scores: [Double]
    private let minScore: Double
    private let byteFallback: Bool
    private let byteFallbackIDs: [Int32]
    private let trie: HFByteTrie
    let cacheID = HFThreadCaches.newID()
    /// K_UNK_PENALTY in tokenizers' unigram/model.rs.
    private static let unknownPenalty = 10.0

    init(pieces: [(String, Double)], unknownID: Int?, byteFallback: Bool, file: String) throws {
        guard !pieces.isEmpty else { throw FileError(.tokenizer, file, "Unigram model has an empty vocab") }
        var vocab = HFVocab(minimumCapacity: pieces.count)
        var minimum = Double.greatestFiniteMagnitude
        for (i, (piece, score)) in pieces.enumerated() {
            vocab[Array(piece.utf8)] = Int32(i)
            minimum = min(minimum, score)
        }
        guard let unk = unknownID else {
            throw FileError(.tokenizer, file, "Unigram model without unk_id is not supported")
        }
        guard unk >= 0 && unk < pieces.count else {
            throw FileError(.tokenizer, file, "Unigram unk_id \(unk) is outside the vocab of \(pieces.count) pieces")
        }
        vocabulary = vocab
        idToToken = pieces.map(\.0)
        entryCount = vocab.count
        self.unknownID = Int32(unk)
        scores = pieces.map(\.1)
        minScore = minimum
        self.byteFallback = byteFallback
        byteFallbackIDs = hfByteFallbackIDs(vocab)
        // The trie maps each piece to its id; a repeated piece keeps its last id (as token_to_ids does).
        trie = HFByteTrie(pieces.enumerated().map { (Array($0.element.0.utf8), Int32($0.offset)) })
    }

    func tokenize(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, cache: HFWordCache, into out: inout [Int32]) {
        if word.isEmpty { return }
        let h = HFWordCache.hash(word)
        if cache.lookup(word, hash: h, into: &out) { return }
        let start = out.count
        viterbi(word, into: &out)
        cache.insert(word, hash: h, ids: out[start...])
    }

    private func viterbi(_ s: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let size = s.count
        guard let unk = unknownID else { return }
        var bestScore = [Double](repeating: 0, count: size + 1)
        var startsAt = [Int32](repeating: -1, count: size + 1)
        var nodeID = [Int32](repeating: -1, count: size + 1)
        let unkScore = minScore - HFUnigramModel.unknownPenalty
        let trie = self.trie  // a local copy: see HFBPEModel.merge
        // Raw buffers in the inner loop: closures over the arrays cost retains on every match.
        bestScore.withUnsafeMutableBufferPointer { best in
            startsAt.withUnsafeMutableBufferPointer { starts in
                nodeID.withUnsafeMutableBufferPointer { ids in
                    scores.withUnsafeBufferPointer { score in
                        var pos = 0
                        while pos < size {
                            let base = best[pos]
                            let charLength = HFUnicode.sequenceLength(s[pos])
                            var hasSingle = false
                            var node = 0
                            var i = pos
                            while i < size {
                                node = trie.child(node, s[i])
                                if node < 0 { break }
                                i += 1
                                let id = trie.value(node)
                                guard id >= 0 else { continue }
                                let candidate = score[Int(id)] + base
                                if starts[i] < 0 || candidate > best[i] {
                                    best[i] = candidate
                                    starts[i] = Int32(pos)
                                    ids[i] = id
                                }
                                if i - pos == charLength { hasSingle = true }
                            }
                            if !hasSingle {
                                let end = min(size, pos + charLength)
                                let candidate = unkScore + base
                                if starts[end] < 0 || candidate > best[end] {
                                    best[end] = candidate
                                    starts[end] = Int32(pos)
                                    ids[end] = unk
                                }
                            }
                            pos += charLength
                        }
                    }
                }
            }
        }
        // Backtrack; consecutive unknown nodes fuse into one string (fuse_unk is always on).
        var pieces = [(Int, Int)]()
        var end = size
        var unknownEnd = -1
        while end > 0 {
            let begin = Int(startsAt[end])
            if nodeID[end] == unk {
                if unknownEnd < 0 { unknownEnd = end }
            } else {
                if unknownEnd >= 0 { pieces.append((end, unknownEnd)); unknownEnd = -1 }
                pieces.append((begin, end))
            }
            end = begin
        }
        if unknownEnd >= 0 { pieces.append((0, unknownEnd)) }
        for (a, b) in pieces.reversed() {
            let piece = UnsafeBufferPointer(rebasing: s[a..<b])
            if let id = trie.exact(piece) { out.append(id); continue }
            if byteFallback {
                let ids = piece.map { byteFallbackIDs[Int($0)] }
                if !ids.contains(-1) { out += ids; continue }
            }
            out.append(unk)
        }
    }
}

/// A byte trie of vocabulary pieces: a 256-way root and sorted child lists below it.
struct HFByteTrie: Sendable {
    private var rootChildren = [Int32](repeating: -1, count: 256)
    private var childStart: [Int32] = []
    private var childCount: [Int32] = []
    private var childBytes: [UInt8] = []
    private var childNodes: [Int32] = []
    private var values: [Int32] = []

    init(_ keys: [([UInt8], Int32)]) {
        // Build with per-node maps, then flatten.
        var children: [[UInt8: Int32]] = [[:]]
        var vals: [Int32] = [-1]
        for (key, id) in keys where !key.isEmpty {
            var node = 0
            for b in key {
                if let c = children[node][b] {
                    node = Int(c)
                } else {
                    children.append([:])
                    vals.append(-1)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            vals[node] = id
        }
        values = vals
        childStart = [Int32](repeating: 0, count: children.count)
        childCount = [Int32](repeating: 0, count: children.count)
        for (node, map) in children.enumerated() {
            childStart[node] = Int32(childBytes.count)
            childCount[node] = Int32(map.count)
            for (b, c) in map.sorted(by: { $0.key < $1.key }) {
                childBytes.append(b)
                childNodes.append(c)
            }
        }
        for (b, c) in children[0] { rootChildren[Int(b)] = c }
    }

    @inline(__always)
    func value(_ node: Int) -> Int32 { values[node] }

    @inline(__always)
    func child(_ node: Int, _ b: UInt8) -> Int {
        if node == 0 { return Int(rootChildren[Int(b)]) }
        var lo = Int(childStart[node]), hi = lo + Int(childCount[node])
        while lo < hi {
            let mid = (lo + hi) / 2
            let x = childBytes[mid]
            if x == b { return Int(childNodes[mid]) }
            if x < b { lo = mid + 1 } else { hi = mid }
        }
        return -1
    }

    /// Calls `body(length, id)` for every piece that starts `s` at `from`, shortest first.
    func commonPrefixes(_ s: UnsafeBufferPointer<UInt8>, from: Int, _ body: (Int, Int32) -> Void) {
        var node = 0
        var i = from
        while i < s.count {
            node = child(node, s[i])
            if node < 0 { return }
            i += 1
            if values[node] >= 0 { body(i - from, values[node]) }
        }
    }

    func exact(_ s: UnsafeBufferPointer<UInt8>) -> Int32? {
        var node = 0
        for b in s {
            node = child(node, b)
            if node < 0 { return nil }
        }
        return values[node] >= 0 ? values[node] : nil
    }
}
