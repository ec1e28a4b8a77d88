import Foundation
import KondateSupport

/// Trains a byte-level BPE tokenizer (GPT-2 style) and writes it as a tokenizer.json that both
/// `HFTokenizer` and the Python `tokenizers` package load and encode identically.
///
/// Texts are split with the ByteLevel pre-tokenizer (GPT-2 regex, no prefix space); with `splitDigits`
/// every numeric character is first isolated (`tokenizers`' `Digits(individual_digits=True)` before
/// ByteLevel, as the written file's pre-tokenizer `Sequence` says). Words are counted as raw bytes. The vocabulary is the special tokens (ids 0…), then all 256 byte symbols in byte
/// order (like `ByteLevel.alphabet()`, so every input is encodable), then one token per merge.
///
/// Deterministic: the same texts give byte-identical JSON, whatever the thread count or the order of
/// `add` calls. Each step merges the adjacent pair with the highest count over all words; ties go to
/// the smallest (left id, right id), i.e. the pair whose tokens were created first. Training stops at
/// `vocabularySize` tokens or when the best count falls below `minFrequency`.
public struct BPETrainer: Sendable {
    /// Target size of the vocabulary, special tokens and the 256 byte symbols included.
    public var vocabularySize: Int
    /// Pairs seen fewer times than this are not merged.
    public var minFrequency: Int
    /// Added as special tokens with the first ids, in this order.
    public var specialTokens: [String]
    /// Worker threads for counting words in `add(texts:)`.
    public var threads: Int
    /// Isolate every numeric character before the GPT-2 split, so no token holds two digits.
    public var splitDigits: Bool

    /// Word (raw UTF-8 bytes) → occurrences, accumulated by `add(texts:)`.
    public private(set) var wordCounts: [[UInt8]: Int] = [:]

    /// A trainer with nothing counted yet.
    public init(vocabularySize: Int, minFrequency: Int = 2, specialTokens: [String] = [], threads: Int = 1, splitDigits: Bool = false) {
        self.splitDigits = splitDigits
        self.vocabularySize = vocabularySize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
        self.threads = threads
    }

    /// Counts the words of `texts` (call repeatedly to stream a corpus).
    public mutating func add(texts: [String]) {
        let workers = max(1, min(threads, texts.count / 64))
        let splitDigits = self.splitDigits
        if workers == 1 {
            BPETrainer.count(texts[...], splitDigits: splitDigits, into: &wordCounts)
            return
        }
        let chunk = (texts.count + workers - 1) / workers
        let partial = BPECountSlots(workers)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = w * chunk, end = min(texts.count, start + chunk)
            guard start < end else { return }
            var local = [[UInt8]: Int]()
            BPETrainer.count(texts[start..<end], splitDigits: splitDigits, into: &local)
            partial.set(w, local)
        }
        // Sums do not depend on the order the partial counts are merged in.
        for local in partial.all() {
            for (word, n) in local { wordCounts[word, default: 0] += n }
        }
    }

    private static func count(_ texts: ArraySlice<String>, splitDigits: Bool, into counts: inout [[UInt8]: Int]) {
        for var text in texts {
            text.withUTF8 { p in
                func split(_ start: Int, _ end: Int) {
                    HFPreTokenizer.gpt2Split(p, start, end) { s, e in counts[Array(p[s..<e]), default: 0] += 1 }
                }
                guard splitDigits else { return split(0, p.count) }
                // Digits(individual_digits): each numeric character is a piece of its own; the GPT-2
                // split then runs on the text between them (it never looks past a piece's end).
                var i = 0, start = 0
                while i < p.count {
                    let (c, length) = HFUnicode.decode(p, i)
                    if HFUnicode.isNumeric(c) {
                        if start < i { split(start, i) }
                        counts[Array(p[i..<(i + length)]), default: 0] += 1
                        start = i + length
                    }
                    i += length
                }
                if start < p.count { split(start, p.count) }
            }
        }
    }

    /// The result of training: tokens by id and the merges in rank order.
    public struct Model: Sendable {
        /// Token strings (GPT-2 byte characters) by id, each string once.
        public var vocabulary: [String]
        /// Merged pairs, highest priority first.
        public var merges: [(String, String)]
        /// Number of leading ids that are special tokens.
        public var specialCount: Int
        /// Digits were isolated in training: the pre-tokenizer isolates them too.
        public var splitDigits = false

        /// The tokenizer.json: version, added_tokens for the special tokens, normalizer null,
        /// ByteLevel pre-tokenizer, post-processor and decoder, and the BPE model.
        public func tokenizerJSON() -> Data {
            var out = "{\n"
            out += "  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
            for id in 0..<specialCount {
                out += id == 0 ? "\n" : ",\n"
                out += "    {\"id\": \(id), \"content\": \(JSON.quoted(vocabulary[id])), \"single_word\": false, "
                out += "\"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
            }
            out += specialCount == 0 ? "],\n" : "\n  ],\n"
            out += "  \"normalizer\": null,\n"
            let byteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
            if splitDigits {
                out += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, \(byteLevel)]},\n"
            } else {
                out += "  \"pre_tokenizer\": \(byteLevel),\n"
            }
            out += "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true},\n"
            out += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"
            out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
            out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
            out += "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {"
            var first = true
            for (id, token) in vocabulary.enumerated() {
                out += first ? "\n      " : ",\n      "
                first = false
                out += "\(JSON.quoted(token)): \(id)"
            }
            out += "\n    },\n    \"merges\": ["
            for (i, (a, b)) in merges.enumerated() {
                out += i == 0 ? "\n      " : ",\n      "
                out += "[\(JSON.quoted(a)), \(JSON.quoted(b))]"
            }
            out += merges.isEmpty ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n"
            return Data(out.utf8)
        }
    }

    /// Learns the merges from the counted words.
    public func train() throws -> Model {
        var specials = [String]()
        for s in specialTokens where !s.isEmpty && !specials.contains(s) { specials.append(s) }
        let base = specials.count + 256
        guard vocabularySize >= base else {
            throw FileError(.tokenizer, "BPETrainer", "vocabularySize \(vocabularySize) is below the \(specials.count) special tokens + 256 byte symbols")
        }
        var tokens = specials
        var tokenIDs = [String: Int32]()
        for (i, s) in specials.enumerated() { tokenIDs[s] = Int32(i) }
        // Byte symbols in byte order. A special token spelled like a byte symbol keeps its own id.
        var byteIDs = [Int32](repeating: 0, count: 256)
        for b in 0..<256 {
            let s = String(decoding: HFUnicode.byteToUTF8[b], as: UTF8.self)
            if let existing = tokenIDs[s] { byteIDs[b] = existing; continue }
            byteIDs[b] = Int32(tokens.count)
            tokenIDs[s] = byteIDs[b]
            tokens.append(s)
        }

        // Words in a fixed order (by bytes), so every later step is independent of hashing.
        let sortedWords = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var words = sortedWords.map { $0.key.map { byteIDs[Int($0)] } }
        let counts = sortedWords.map(\.value)

        var pairCounts = [UInt64: Int]()
        var pairWords = [UInt64: [Int32]]()
        for (w, symbols) in words.enumerated() where symbols.count > 1 {
            for i in 0..<symbols.count - 1 {
                let key = BPETrainer.key(symbols[i], symbols[i + 1])
                pairCounts[key, default: 0] += counts[w]
                pairWords[key, default: []].append(Int32(w))
            }
        }
        var heap = BPEPairHeap()
        for (key, n) in pairCounts where n > 0 { heap.push(count: n, key: key) }

        var merges = [(String, String)]()
        while tokens.count < vocabularySize, let top = heap.pop() {
            guard let current = pairCounts[top.key], current == top.count else { continue }  // stale entry
            if current < max(1, minFrequency) { break }
            let left = Int32(truncatingIfNeeded: top.key >> 32), right = Int32(truncatingIfNeeded: top.key & 0xFFFF_FFFF)
            let merged = tokens[Int(left)] + tokens[Int(right)]
            // A string made before by another pair (or a special token) keeps its id, as in tokenizers.
            let newID: Int32
            if let existing = tokenIDs[merged] {
                newID = existing
            } else {
                newID = Int32(tokens.count)
                tokenIDs[merged] = newID
                tokens.append(merged)
            }
            merges.append((tokens[Int(left)], tokens[Int(right)]))

            // Re-count only the words that hold the pair: remove their pairs, merge, add them back.
            var changed = Set<UInt64>()
            var affected = pairWords[top.key] ?? []
            affected.sort()
            var previous: Int32 = -1
            for w in affected where w != previous {
                previous = w
                let wi = Int(w)
                var symbols = words[wi]
                guard symbols.count > 1 else { continue }
                var found = false
                for i in 0..<symbols.count - 1 where symbols[i] == left && symbols[i + 1] == right { found = true; break }
                guard found else { continue }
                let n = counts[wi]
                for i in 0..<symbols.count - 1 {
                    let k = BPETrainer.key(symbols[i], symbols[i + 1])
                    pairCounts[k, default: 0] -= n
                    changed.insert(k)
                }
                var out = [Int32]()
                out.reserveCapacity(symbols.count)
                var i = 0
                while i < symbols.count {
                    if i + 1 < symbols.count && symbols[i] == left && symbols[i + 1] == right {
                        out.append(newID)
                        i += 2
                    } else {
                        out.append(symbols[i])
                        i += 1
                    }
                }
                symbols = out
                words[wi] = symbols
                for i in 0..<max(0, symbols.count - 1) {
                    let k = BPETrainer.key(symbols[i], symbols[i + 1])
                    pairCounts[k, default: 0] += n
                    changed.insert(k)
                    if symbols[i] == newID || symbols[i + 1] == newID { pairWords[k, default: []].append(w) }
                }
            }
            pairWords[top.key] = nil
            for k in changed {
                let n = pairCounts[k] ?? 0
                if n > 0 { heap.push(count: n, key: k) } else { pairCounts[k] = nil }
            }
        }
        return Model(vocabulary: tokens, merges: merges, specialCount: specials.count, splitDigits: splitDigits)
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }
}

/// Partial word counts from the counting workers, one slot each.
final class BPECountSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[[UInt8]: Int]]

    init(_ n: Int) { slots = Array(repeating: [:], count: n) }

    func set(_ i: Int, _ counts: [[UInt8]: Int]) {
        lock.lock(); defer { lock.unlock() }
        slots[i] = counts
    }

    func all() -> [[[UInt8]: Int]] {
        lock.lock(); defer { lock.unlock() }
        return slots
    }
}

/// A binary max-heap of (count, pair): highest count first, then the smallest pair key.
struct BPEPairHeap {
    private var items: [(count: Int, key: UInt64)] = []

    @inline(__always)
    private func before(_ a: Int, _ b: Int) -> Bool {
        items[a].count != items[b].count ? items[a].count > items[b].count : items[a].key < items[b].key
    }

    mutating func push(count: Int, key: UInt64) {
        items.append((count, key))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !before(i, parent) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (count: Int, key: UInt64)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && before(l, m) { m = l }
                if r < items.count && before(r, m) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
