import KondateSupport
import Foundation

/// A SentencePiece `.model` tokenizer (unigram or BPE) that encodes and decodes exactly like the Python
/// `sentencepiece` package: `encode` equals `sp.encode(text)` (no BOS/EOS), `decode` equals `sp.decode(ids)`.
///
/// The pipeline follows the C++ sources: normalizer.cc (charsmap, whitespace, user-defined symbols),
/// unigram_model.cc `EncodeOptimized` (with 0.2.3's float scoring, user-defined score and score
/// re-centering) or bpe_model.cc `SampleEncode` without dropout, then sentencepiece_processor.cc (byte
/// fallback, merged unknown runs, and `Decode`). WORD and CHAR models are refused at load.
public struct SentencePieceTokenizer: TokenizerFile {
    /// The parsed model file: pieces with scores and types, trainer and normalizer options.
    public let model: SentencePieceModel
    public let vocabularySize: Int
    public let specialIDs: [String: Int32]
    private let core: SentencePieceEncoder


    /// Loads a serialized `ModelProto`; `file` names the source in errors.
    public init(data: Data, file: String) throws {
        try self.init(model: SentencePieceModel(data: data, file: file), file: file)
    }

    /// Builds the tokenizer for an already parsed (or constructed) model; `file` names it in errors.
    public init(model: SentencePieceModel, file: String) throws {
        self.model = model
        core = try SentencePieceEncoder(model, file: file)
        vocabularySize = model.pieces.count
        var special: [String: Int32] = [:]
        for (role, id) in [("unk", core.unkRoleID), ("bos", core.bosRoleID), ("eos", core.eosRoleID), ("pad", core.padRoleID)] where id >= 0 {
            special[role] = id
        }
        specialIDs = special
    }

    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { core.encode($0) }
    }

    public func decode(_ ids: [Int32]) -> String {
        core.decode(ids)
    }

    public func id(of token: String) -> Int32? {
        let id = core.pieceToID(Array(token.utf8))
        return id >= 0 ? id : nil
    }

    public func token(of id: Int32) -> String? {
        guard id >= 0, Int(id) < model.pieces.count else { return nil }
        return model.pieces[Int(id)].piece
    }

    /// The normalized text the model segments ("▁" for spaces, dummy prefix, charsmap applied).
    public func normalize(_ text: String) -> String {
        var text = text
        return String(decoding: text.withUTF8 { core.normalizer.normalize($0) }, as: UTF8.self)
    }
}

/// The immutable encoding state shared by copies of a `SentencePieceTokenizer`: tries, per-id tables
/// and the normalizers. Built once; owns its buffers.
final class SentencePieceEncoder: @unchecked Sendable {
    private enum Kind: UInt8 {
        case normal, unknown, control, userDefined, unused, byte
    }

    private let modelType: SentencePieceModel.ModelType
    let normalizer: SentencePieceNormalizer
    private let denormalizer: SentencePieceNormalizer?
    /// NORMAL, USER_DEFINED and UNUSED pieces (ModelInterface::pieces_).
    private let trie: SentencePieceTrie
    /// CONTROL, UNKNOWN and BYTE pieces (reserved_id_map_), looked up first by PieceToId.
    private let reserved: SentencePieceTrie
    /// User-defined symbols: frozen symbols in BPE.
    private let userDefined: SentencePieceTrie?
    private let pieceBytes: [[UInt8]]
    private let kinds: UnsafeMutableBufferPointer<Kind>
    private let scores: UnsafeMutableBufferPointer<Float>
    /// The unigram lattice score of each piece (EncodeOptimized).
    private let viterbiScores: UnsafeMutableBufferPointer<Float>
    /// PieceToId(IdToPiece(id)): what decode looks up for each id.
    private let decodeIDs: [Int32]
    /// The id of "<0xHH>" for each byte (byte fallback).
    private let byteIDs: [Int32]
    private let byteFallback: Bool
    private let hasUnused: Bool
    /// BPE only: a Bloom-style bitmap of the character bigrams inside any piece. Where two adjacent
    /// characters' bit is clear no piece spans them, so no merge ever crosses that point and the text
    /// can be merged in independent chunks (small heaps). nil with UNUSED pieces, whose split-back
    /// table sentencepiece keeps for the whole text.
    private let bigramFilter: [UInt64]?
    private let unkID: Int32
    private let unkScore: Float
    private let unkSurface: [UInt8]
    private let decodeStripsLeadingSpace: Bool
    private let decodeRemovesExtraWhitespaces: Bool
    let unkRoleID: Int32, bosRoleID: Int32, eosRoleID: Int32, padRoleID: Int32

    init(_ model: SentencePieceModel, file: String) throws {
        let spec = model.trainerSpec
        modelType = spec.modelType
        guard modelType == .unigram || modelType == .bpe else {
            throw FileError(.tokenizer, file, "unsupported SentencePiece model type \(modelType) (only unigram and BPE are implemented)")
        }
        let count = model.pieces.count
        guard count > 0 else { throw FileError(.tokenizer, file, "the model has no pieces") }
        guard count <= Int(Int32.max) else { throw FileError(.tokenizer, file, "too many pieces") }

        // ModelInterface::InitializePieces, with its checks.
        var normalKeys: [[UInt8]] = [], normalIDs: [Int32] = []
        var reservedKeys: [[UInt8]] = [], reservedIDs: [Int32] = []
        var normalSeen: Set<[UInt8]> = [], reservedSeen: Set<[UInt8]> = []
        var userSymbols: [[UInt8]] = []
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(count)
        var kindTable: [Kind] = []
        kindTable.reserveCapacity(count)
        var unk: Int32 = -1
        var byteFound = [Int32](repeating: -1, count: 256)
        var byteValueOf = [Int16](repeating: -1, count: count)
        for (i, p) in model.pieces.enumerated() {
            let key = Array(p.piece.utf8)
            guard !key.isEmpty else { throw FileError(.tokenizer, file, "piece \(i) is empty") }
            guard key.count < 8000 else { throw FileError(.tokenizer, file, "piece \(i) is too long (\(key.count) bytes)") }
            guard !key.contains(0) else { throw FileError(.tokenizer, file, "piece \(i) contains a NUL character") }
            let kind: Kind
            switch p.type {
            case .normal: kind = .normal
            case .unknown: kind = .unknown
            case .control: kind = .control
            case .userDefined: kind = .userDefined
            case .unused: kind = .unused
            case .byte: kind = .byte
            }
            if kind == .normal || kind == .userDefined || kind == .unused {
                guard normalSeen.insert(key).inserted else { throw FileError(.tokenizer, file, "piece \(i) '\(p.piece)' is already defined") }
                normalKeys.append(key)
                normalIDs.append(Int32(i))
            } else {
                guard reservedSeen.insert(key).inserted else { throw FileError(.tokenizer, file, "piece \(i) '\(p.piece)' is already defined") }
                reservedKeys.append(key)
                reservedIDs.append(Int32(i))
            }
            if kind == .userDefined { userSymbols.append(key) }
            if kind == .unknown {
                guard unk < 0 else { throw FileError(.tokenizer, file, "unk is already defined (pieces \(unk) and \(i))") }
                unk = Int32(i)
            }
            if kind == .byte {
                guard spec.byteFallback else {
                    throw FileError(.tokenizer, file, "byte piece \(p.piece) is found although byte_fallback is false")
                }
                guard let b = Self.byteOfPiece(key) else { throw FileError(.tokenizer, file, "byte piece \(p.piece) is invalid") }
                byteFound[Int(b)] = Int32(i)
                byteValueOf[i] = Int16(b)
            }
            bytes.append(key)
            kindTable.append(kind)
        }
        guard unk >= 0 else { throw FileError(.tokenizer, file, "unk is not defined (no piece of type UNKNOWN)") }
        if spec.byteFallback, byteFound.contains(-1) {
            throw FileError(.tokenizer, file, "there are not 256 byte pieces although byte_fallback is true")
        }
        guard !normalKeys.isEmpty else { throw FileError(.tokenizer, file, "no pieces are loaded (only control, unknown and byte pieces)") }
        let trie = SentencePieceTrie(keys: normalKeys, values: normalIDs)
        let reserved = SentencePieceTrie(keys: reservedKeys, values: reservedIDs)
        // ModelInterface::PieceToId: reserved pieces first, then the others, else unk.
        func lookup(_ key: [UInt8]) -> Int32 {
            let r = reserved.exactMatch(key)
            if r >= 0 { return r }
            let id = trie.exactMatch(key)
            return id >= 0 ? id : unk
        }
        // SentencePieceProcessor::unk_id() etc.: the id of the role's piece, if it has the right type.
        func role(_ piece: String, _ fallback: String, _ kind: Kind) -> Int32 {
            let id = lookup(Array((piece.isEmpty ? fallback : piece).utf8))
            return kindTable[Int(id)] == kind ? id : -1
        }
        unkRoleID = role(spec.unkPiece, "<unk>", .unknown)
        bosRoleID = role(spec.bosPiece, "<s>", .control)
        eosRoleID = role(spec.eosPiece, "</s>", .control)
        padRoleID = role(spec.padPiece, "<pad>", .control)
        byteIDs = (0..<256).map { lookup(Array(String(format: "<0x%02X>", $0).utf8)) }
        decodeIDs = bytes.map(lookup)
        byteValues = byteValueOf

        self.trie = trie
        self.reserved = reserved
        unkID = unk
        pieceBytes = bytes
        userDefined = userSymbols.isEmpty ? nil : SentencePieceTrie(keys: userSymbols, values: userSymbols.indices.map { Int32($0) })
        byteFallback = spec.byteFallback
        hasUnused = kindTable.contains(.unused)
        bigramFilter = modelType == .bpe && !hasUnused ? Self.bigramFilter(bytes) : nil

        // Everything that can throw comes before the manual allocations below: a class whose initializer
        // throws before every property is set never runs its deinit, so they would leak (found by
        // scripts/fuzz.sh sentencepiece).
        let builtNormalizer = try SentencePieceNormalizer(spec: model.normalizerSpec, treatWhitespaceAsSuffix: spec.treatWhitespaceAsSuffix,
                                                          userDefinedSymbols: userSymbols, file: file)
        var builtDenormalizer: SentencePieceNormalizer?
        if let d = model.denormalizerSpec, !d.precompiledCharsmap.isEmpty {
            builtDenormalizer = try SentencePieceNormalizer(spec: d, treatWhitespaceAsSuffix: false, userDefinedSymbols: [], file: file)
        }

        kinds = .allocate(capacity: count)
        _ = kinds.initialize(from: kindTable)
        scores = .allocate(capacity: count)
        _ = scores.initialize(from: model.pieces.map(\.score))

        // unigram::Model: an unknown character scores the lowest NORMAL score (from FLT_MAX) minus 10.
        var minScore = Float.greatestFiniteMagnitude
        for p in model.pieces where p.type == .normal { minScore = min(minScore, p.score) }
        unkScore = minScore - 10
        viterbiScores = .allocate(capacity: count)
        for i in 0..<count {
            // A user-defined symbol of n bytes scores 0.1 * (n - 1) (GetUserDefinedScore in 0.2.3;
            // older releases used n * max_score - 0.1).
            viterbiScores[i] = kindTable[i] == .userDefined ? Float(0.1) * Float(bytes[i].count - 1) : model.pieces[i].score
        }

        normalizer = builtNormalizer
        denormalizer = builtDenormalizer
        decodeStripsLeadingSpace = model.normalizerSpec.addDummyPrefix || model.normalizerSpec.removeExtraWhitespaces
        decodeRemovesExtraWhitespaces = model.normalizerSpec.removeExtraWhitespaces
        unkSurface = Array((spec.unkSurface ?? " \u{2047} ").utf8)
    }

    /// The byte value of each BYTE piece by id, -1 for other pieces.
    private let byteValues: [Int16]

    deinit {
        kinds.deallocate()
        scores.deallocate()
        viterbiScores.deallocate()
    }

    /// PieceToIdByte for "<0xHH>" (two upper-case hex digits), else nil.
    private static func byteOfPiece(_ key: [UInt8]) -> UInt8? {
        guard key.count == 6, key[0] == UInt8(ascii: "<"), key[1] == UInt8(ascii: "0"), key[2] == UInt8(ascii: "x"),
              key[5] == UInt8(ascii: ">") else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        guard let hi = hex(key[3]), let lo = hex(key[4]) else { return nil }
        return hi << 4 | lo
    }

    /// ModelInterface::PieceToId without the unk fallback: -1 when the piece is not in the vocabulary.
    func pieceToID(_ key: [UInt8]) -> Int32 {
        let r = reserved.exactMatch(key)
        return r >= 0 ? r : trie.exactMatch(key)
    }

    private static let bigramFilterBits = 1 << 20

    /// Up to four UTF-8 bytes as one integer.
    @inline(__always)
    private static func packed(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in start..<(start + length) { value = value << 8 | UInt64(bytes[i]) }
        return value
    }

    @inline(__always)
    private static func bigramBit(_ first: UInt64, _ second: UInt64) -> Int {
        Int(truncatingIfNeeded: ((first << 32 | second) &* 0x9E37_79B9_7F4A_7C15) >> 44) & (bigramFilterBits - 1)
    }

    /// Sets the bit of every adjacent character pair of every piece (all types: a superset is safe).
    private static func bigramFilter(_ pieces: [[UInt8]]) -> [UInt64] {
        var filter = [UInt64](repeating: 0, count: bigramFilterBits / 64)
        for piece in pieces {
            piece.withUnsafeBufferPointer { p in
                var previous: UInt64? = nil
                var i = 0
                while i < p.count {
                    let length = min(SentencePieceUTF8.oneCharLength(p[i]), p.count - i)
                    let current = packed(p, i, length)
                    if let previous {
                        let bit = bigramBit(previous, current)
                        filter[bit >> 6] |= 1 << UInt64(bit & 63)
                    }
                    previous = current
                    i += length
                }
            }
        }
        return filter
    }

    // MARK: - Encode

    func encode(_ input: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var normalized = SentencePieceByteBuffer(capacity: input.count + input.count / 2 + 16)
        defer { normalized.deallocate() }
        normalizer.normalize(input, into: &normalized)
        guard normalized.count > 0 else { return [] }
        var output = Output()
        output.ids.reserveCapacity(normalized.count / 2 + 4)
        switch modelType {
        case .bpe: encodeBPE(normalized.bytes, into: &output)
        default: encodeUnigram(normalized.bytes, into: &output)
        }
        return output.ids
    }

    /// The id stream being built, with PopulateSentencePieceText's rules for unknown pieces.
    private struct Output {
        var ids: [Int32] = []
        var previousUnknown = false
    }

    /// Appends the piece `text[start..<end]` with `id`: an unknown piece becomes its UTF-8 bytes
    /// (`<0xHH>` pieces) with byte fallback, otherwise a run of unknown pieces becomes one id.
    @inline(__always)
    private func emit(_ id: Int32, _ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ output: inout Output) {
        if kinds[Int(id)] == .unknown {
            if byteFallback {
                for i in start..<end { output.ids.append(byteIDs[Int(text[i])]) }
            } else if !output.previousUnknown {
                output.ids.append(id)
            }
            output.previousUnknown = true
        } else {
            output.ids.append(id)
            output.previousUnknown = false
        }
    }

    /// unigram::Model::EncodeOptimized as of sentencepiece 0.2.3: the best path over byte positions in
    /// float arithmetic, the first path found wins ties, a user-defined piece of n bytes scores
    /// 0.1 * (n - 1), and path scores are re-centered to 0 once they pass ±100 000 (which changes the
    /// rounding, so it is part of the result).
    private func encodeUnigram(_ text: UnsafeBufferPointer<UInt8>, into output: inout Output) {
        struct Best {
            var score: Float
            var startsAt: Int32
            var id: Int32
        }
        let n = text.count
        let best = UnsafeMutableBufferPointer<Best>.allocate(capacity: n + 1)
        defer { best.deallocate() }
        best.initialize(repeating: Best(score: 0, startsAt: -1, id: -1))
        let trie = self.trie
        let resetThreshold: Float = 100_000
        var maxFrontier = 0
        var startsAt = 0
        while startsAt < n {
            var scoreHere = best[startsAt].score
            if scoreHere < -resetThreshold || scoreHere > resetThreshold {
                let offset = scoreHere
                for i in startsAt...maxFrontier where i == startsAt || best[i].startsAt != -1 {
                    best[i].score -= offset
                }
                scoreHere = 0
            }
            let charLength = min(SentencePieceUTF8.oneCharLength(text[startsAt]), n - startsAt)
            var hasSingleNode = false
            var state: Int32 = 0
            var keyPosition = startsAt
            while keyPosition < n {
                state = trie.child(state, text[keyPosition])
                if state < 0 { break }
                keyPosition += 1
                let id = trie.value(state)
                if id < 0 || kinds[Int(id)] == .unused { continue }
                if keyPosition > maxFrontier { maxFrontier = keyPosition }
                let candidate = viterbiScores[Int(id)] + scoreHere
                if best[keyPosition].startsAt == -1 || candidate > best[keyPosition].score {
                    best[keyPosition] = Best(score: candidate, startsAt: Int32(startsAt), id: id)
                }
                if keyPosition - startsAt == charLength { hasSingleNode = true }
            }
            if !hasSingleNode {
                let end = startsAt + charLength
                if end > maxFrontier { maxFrontier = end }
                let candidate = unkScore + scoreHere
                if best[end].startsAt == -1 || candidate > best[end].score {
                    best[end] = Best(score: candidate, startsAt: Int32(startsAt), id: unkID)
                }
            }
            startsAt += charLength
        }
        // Backtrack, then emit in order.
        var ends: [Int32] = []
        var end = n
        while end > 0 {
            ends.append(Int32(end))
            end = Int(best[end].startsAt)
        }
        var start = 0
        for e in ends.reversed() {
            let e = Int(e)
            emit(best[e].id, text, start, e, &output)
            start = e
        }
    }

    /// bpe::Model::SampleEncode without dropout: repeatedly merge the adjacent pair whose merged piece
    /// scores highest (leftmost on ties); user-defined symbols never merge; UNUSED pieces may be merged
    /// through but are split back into the pair they were made from. Runs of symbols that no piece
    /// can join are merged separately, which gives the same result as one pass over the whole text
    /// (merges in one run never change the candidates of another) with much smaller heaps.
    private func encodeBPE(_ text: UnsafeBufferPointer<UInt8>, into output: inout Output) {
        let n = text.count
        let symbols = UnsafeMutableBufferPointer<BPESymbol>.allocate(capacity: n)
        defer { symbols.deallocate() }
        var count = 0
        var position = 0
        while position < n {
            var length = 0
            if let userDefined, userDefined.mayStart(with: text[position]) {
                length = userDefined.longestPrefix(text, position, n)
            }
            let frozen = length > 0
            var state: Int32 = -1
            if !frozen {
                length = min(SentencePieceUTF8.oneCharLength(text[position]), n - position)
                state = 0
                for i in position..<(position + length) where state >= 0 { state = trie.child(state, text[i]) }
            }
            symbols[count] = BPESymbol(start: Int32(position), length: Int32(length), previous: Int32(count - 1),
                                       next: position + length < n ? Int32(count + 1) : -1, state: state, frozen: frozen)
            count += 1
            position += length
        }
        // Each merge queues at most two pairs, so 3 * count entries always suffice.
        var queue = SentencePieceMergeQueue(capacity: 3 * count + 1)
        defer { queue.deallocate() }
        // Merged UNUSED piece id -> byte length of its left part when it was last queued (rev_merge).
        var unusedSplits: [Int32: Int32] = [:]
        var chunkStart = 0
        while chunkStart < count {
            // Symbols chunkStart..<chunkEnd merge only among themselves (see bigramFilter); frozen
            // symbols never merge, so both their sides are boundaries too.
            var chunkEnd = count
            if let bigramFilter {
                chunkEnd = chunkStart + 1
                while chunkEnd < count {
                    let a = symbols[chunkEnd - 1], b = symbols[chunkEnd]
                    if a.frozen || b.frozen { break }
                    let bit = Self.bigramBit(Self.packed(text, Int(a.start), Int(a.length)), Self.packed(text, Int(b.start), Int(b.length)))
                    if bigramFilter[bit >> 6] & (1 << UInt64(bit & 63)) == 0 { break }
                    chunkEnd += 1
                }
            }
            if chunkEnd - chunkStart > 1 {
                queue.removeAll()
                for right in (chunkStart + 1)..<chunkEnd {
                    if let pair = mergeCandidate(symbols, text, Int32(right - 1), Int32(right)) {
                        queue.push(pair)
                        if hasUnused, kinds[Int(pair.id)] == .unused { unusedSplits[pair.id] = symbols[right - 1].length }
                    }
                }
                while let top = queue.pop() {
                    let left = Int(top.left), right = Int(top.right)
                    // Stale: one side was merged away or has grown since the pair was queued.
                    let leftLength = symbols[left].length, rightLength = symbols[right].length
                    if leftLength == 0 || rightLength == 0 || leftLength + rightLength != top.size { continue }
                    symbols[left].length = top.size
                    symbols[left].state = top.state
                    symbols[right].length = 0
                    let after = symbols[right].next
                    symbols[left].next = after
                    if after >= 0 { symbols[Int(after)].previous = Int32(left) }
                    let before = symbols[left].previous
                    if before >= chunkStart, let pair = mergeCandidate(symbols, text, before, Int32(left)) {
                        queue.push(pair)
                        if hasUnused, kinds[Int(pair.id)] == .unused { unusedSplits[pair.id] = symbols[Int(before)].length }
                    }
                    if after >= 0, after < chunkEnd, let pair = mergeCandidate(symbols, text, Int32(left), after) {
                        queue.push(pair)
                        if hasUnused, kinds[Int(pair.id)] == .unused { unusedSplits[pair.id] = top.size }
                    }
                }
            }
            chunkStart = chunkEnd
        }
        var index: Int32 = 0
        while index >= 0 {
            let symbol = symbols[Int(index)]
            let start = Int(symbol.start), end = start + Int(symbol.length)
            // The piece's id among NORMAL, USER_DEFINED and UNUSED pieces (PieceToIdNoReserved), else unk:
            // a symbol spelling a control or byte piece is unknown text, not that piece.
            var id = symbol.frozen ? trie.exactMatch(text, start, end) : (symbol.state >= 0 ? trie.value(symbol.state) : -1)
            if id < 0 { id = unkID }
            if hasUnused, kinds[Int(id)] == .unused {
                resegment(text, start, end, id, unusedSplits, &output)
            } else {
                emit(id, text, start, end, &output)
            }
            index = symbol.next
        }
    }

    private struct BPESymbol {
        var start: Int32
        var length: Int32
        var previous: Int32
        var next: Int32
        /// The trie state reached by the symbol's bytes (-1 when no piece starts with them); frozen
        /// symbols have none.
        var state: Int32
        var frozen: Bool
    }

    /// The queued pair for `left` + `right` if the two are adjacent, mergeable and their concatenation
    /// is a NORMAL, USER_DEFINED or UNUSED piece. Walks the trie from the left symbol's state.
    @inline(__always)
    private func mergeCandidate(_ symbols: UnsafeMutableBufferPointer<BPESymbol>, _ text: UnsafeBufferPointer<UInt8>,
                                _ left: Int32, _ right: Int32) -> SentencePieceMergeQueue.Pair? {
        guard left >= 0, right >= 0 else { return nil }
        let l = symbols[Int(left)], r = symbols[Int(right)]
        guard !l.frozen, !r.frozen, l.state >= 0 else { return nil }
        var state = l.state
        var i = Int(r.start)
        let end = i + Int(r.length)
        while i < end {
            state = trie.child(state, text[i])
            if state < 0 { return nil }
            i += 1
        }
        let id = trie.value(state)
        guard id >= 0 else { return nil }
        return .init(score: scores[Int(id)], left: left, right: right, size: l.length + r.length, state: state, id: id)
    }

    /// Splits an UNUSED piece back into the two parts it was merged from, and those again while they
    /// are UNUSED (with an explicit stack: a hostile model could nest thousands deep).
    private func resegment(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ id: Int32,
                           _ splits: [Int32: Int32], _ output: inout Output) {
        var stack: [(Int, Int, Int32)] = [(start, end, id)]
        while let (s, e, piece) = stack.popLast() {
            guard kinds[Int(piece)] == .unused, let leftLength = splits[piece] else {
                emit(piece, text, s, e, &output)
                continue
            }
            let middle = s + Int(leftLength)
            var left = trie.exactMatch(text, s, middle), right = trie.exactMatch(text, middle, e)
            if left < 0 { left = unkID }
            if right < 0 { right = unkID }
            // The left part is emitted first, so it goes on top.
            stack.append((middle, e, right))
            stack.append((s, middle, left))
        }
    }

    // MARK: - Decode

    /// SentencePieceProcessor::Decode: control pieces vanish, unknown pieces read " ⁇ ", runs of byte
    /// pieces are reassembled as UTF-8 (each malformed byte becomes U+FFFD), "▁" becomes a space and the
    /// first piece loses one leading "▁". Ids outside the vocabulary (which sentencepiece rejects) are
    /// skipped.
    func decode(_ ids: [Int32]) -> String {
        var text: [UInt8] = []
        var pendingBytes: [UInt8] = []
        var isBOSWhitespace = true
        var bosWhitespaceSeen = false
        func flushBytes() {
            guard !pendingBytes.isEmpty else { return }
            pendingBytes.withUnsafeBufferPointer { bytes in
                var offset = 0
                while offset < bytes.count {
                    let length = SentencePieceUTF8.validCharacterLength(bytes, offset)
                    if length == 0 {
                        text.append(0xEF); text.append(0xBF); text.append(0xBD)
                        offset += 1
                    } else {
                        text.append(contentsOf: bytes[offset..<(offset + length)])
                        offset += length
                    }
                }
            }
            pendingBytes.removeAll(keepingCapacity: true)
        }
        for raw in ids {
            guard raw >= 0, Int(raw) < pieceBytes.count else { continue }
            let id = decodeIDs[Int(raw)]
            let piece = pieceBytes[Int(raw)]
            let kind = kinds[Int(id)]
            if kind == .byte, byteValues[Int(id)] >= 0 {
                pendingBytes.append(UInt8(byteValues[Int(id)]))
                continue
            }
            flushBytes()
            if bosWhitespaceSeen || !text.isEmpty { isBOSWhitespace = false }
            bosWhitespaceSeen = false
            switch kind {
            case .control:
                break
            case .unknown:
                text.append(contentsOf: pieceBytes[Int(id)] == piece ? unkSurface : piece)
            default:
                var start = 0
                if isBOSWhitespace, decodeStripsLeadingSpace, piece.count >= 3, piece[0] == 0xE2, piece[1] == 0x96, piece[2] == 0x81 {
                    start = 3
                    // With remove_extra_whitespaces every leading "▁" goes, so keep looking.
                    bosWhitespaceSeen = !decodeRemovesExtraWhitespaces
                }
                var i = start
                while i < piece.count {
                    if i + 2 < piece.count, piece[i] == 0xE2, piece[i + 1] == 0x96, piece[i + 2] == 0x81 {
                        text.append(0x20)
                        i += 3
                    } else {
                        text.append(piece[i])
                        i += 1
                    }
                }
            }
        }
        flushBytes()
        if let denormalizer { text = text.withUnsafeBufferPointer { denormalizer.normalize($0) } }
        return String(decoding: text, as: UTF8.self)
    }
}

/// The BPE agenda: a binary max-heap on (score, then the leftmost pair) in fixed-capacity buffers
/// that the owner deallocates. Heap entries are 16 bytes with one integer key, so a comparison is one
/// instruction; the rest of each pair waits in a side buffer.
struct SentencePieceMergeQueue {
    struct Pair {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32
        /// The trie state of the merged piece, and its id.
        var state: Int32
        var id: Int32
    }

    private struct Entry {
        /// Score (order-preserving bits) above, then UInt32.max - left: larger keys come first.
        var key: UInt64
        var slot: Int32
    }

    private struct Payload {
        var right: Int32
        var size: Int32
        var state: Int32
        var id: Int32
        var score: Float
    }

    private let heap: UnsafeMutablePointer<Entry>
    private let payloads: UnsafeMutablePointer<Payload>
    private let capacity: Int
    private var count = 0
    private var pushed = 0

    init(capacity: Int) {
        self.capacity = capacity
        heap = .allocate(capacity: capacity)
        payloads = .allocate(capacity: capacity)
    }

    func deallocate() {
        heap.deallocate()
        payloads.deallocate()
    }

    /// Empties the queue for reuse.
    mutating func removeAll() {
        count = 0
        pushed = 0
    }

    /// Float order as unsigned integers (-0 counts as +0, as the float comparison has them equal).
    @inline(__always)
    private static func orderable(_ score: Float) -> UInt64 {
        let bits = (score == 0 ? Float(0) : score).bitPattern
        return UInt64(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000)
    }

    @inline(__always)
    mutating func push(_ pair: Pair) {
        precondition(pushed < capacity, "merge queue overflow")
        payloads[pushed] = Payload(right: pair.right, size: pair.size, state: pair.state, id: pair.id, score: pair.score)
        let entry = Entry(key: Self.orderable(pair.score) << 32 | UInt64(UInt32.max - UInt32(bitPattern: pair.left)),
                          slot: Int32(pushed))
        pushed += 1
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry.key > heap[parent].key else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = entry
    }

    @inline(__always)
    mutating func pop() -> Pair? {
        guard count > 0 else { return nil }
        let top = heap[0]
        count -= 1
        if count > 0 {
            let last = heap[count]
            var parent = 0
            while true {
                var child = 2 * parent + 1
                if child >= count { break }
                if child + 1 < count, heap[child + 1].key > heap[child].key { child += 1 }
                guard heap[child].key > last.key else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        let payload = payloads[Int(top.slot)]
        let left = Int32(bitPattern: UInt32.max - UInt32(truncatingIfNeeded: top.key))
        return Pair(score: payload.score, left: left, right: payload.right, size: payload.size, state: payload.state, id: payload.id)
    }
}
