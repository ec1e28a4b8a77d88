import Foundation
import KondateSupport

/// A Hugging Face `tokenizer.json`, encoding and decoding exactly as the `tokenizers` library does
/// (`encode(text, add_special_tokens=False).ids` and `decode(ids, skip_special_tokens=False)`).
///
/// Supported components (anything else throws `FileError` naming it):
/// - models: BPE (both merges formats, byte_fallback, unk_token/fuse_unk, ignore_merges,
///   continuing_subword_prefix, end_of_word_suffix; dropout must be null or 0) and Unigram
///   (unk_id, byte_fallback);
/// - normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace (string or regex), Prepend,
///   Precompiled, Sequence;
/// - pre-tokenizers: ByteLevel, Metaspace, Split (string or regex), Digits, Whitespace,
///   WhitespaceSplit, Punctuation, CharDelimiterSplit, BertPreTokenizer, Sequence;
/// - decoders: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence.
///
/// The post-processor is not applied (callers add special tokens), and `truncation` and `padding`
/// are ignored: they shape batches for a model and are not part of tokenization.
///
/// Special roles (`specialIDs`): "unk" is the model's unk token (BPE `unk_token`, Unigram `unk_id`);
/// "bos", "eos" and "pad" are the first added tokens marked special whose content is one of the usual
/// spellings: bos `<s> <bos> <|begin_of_text|> <|startoftext|> [BOS] <BOS>`, eos `</s> <eos>
/// <|end_of_text|> <|endoftext|> <|eot_id|> [EOS] <EOS>`, pad `<pad> <|pad|> <|padding|> [PAD] <PAD>`.
public struct HFTokenizer: TokenizerFile {
    /// The largest id (model or added token) + 1.
    public let vocabularySize: Int
    /// Ids of the roles "unk", "bos", "eos", "pad" that the file defines (see the rule above).
    public let specialIDs: [String: Int32]

    private let model: any HFModel
    private let normalizer: HFNormalizer?
    private let preTokenizer: HFPreTokenizer?
    private let decoder: HFDecoder?
    private let rawMatcher: HFAddedMatcher
    private let normalizedMatcher: HFAddedMatcher
    private let addedIDs: HFVocab
    private let addedTokens: [Int32: String]
    /// Pre-tokenization needs input offsets (Metaspace with prepend_scheme "first").
    private let tracksOffsets: Bool
    /// Whether the pre-tokenizer is plain ByteLevel (no prefix space, GPT-2 regex) over a BPE model
    /// with no normalizer: the fast path splits and merges straight on the input bytes.
    private let byteLevelFastPath: Bool


    /// Parses tokenizer.json contents; `file` names the source in errors.
    public init(data: Data, file: String) throws {
        // KondateSupport's parser rather than JSONSerialization: it keeps every object entry, and
        // JSONSerialization merges vocab keys that are canonically equivalent (Swift String equality).
        let parsed: Result<JSON, JSONParser.Failure> = data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            do throws(JSONParser.Failure) { return .success(try JSONParser.parse(bytes)) } catch { return .failure(error) }
        }
        let json: JSON
        switch parsed {
        case .success(let value): json = value
        case .failure(let failure): throw FileError(.tokenizer, file, "not valid JSON: \(failure)")
        }
        guard case .object = json, let root = HFParser.foundationValue(json) as? [String: Any] else {
            throw FileError(.tokenizer, file, "the top level is not a JSON object")
        }
        var p = HFParser(file: file)
        if case .object(let entries)? = json["model"]?["vocab"] { p.vocabEntries = entries }
        if let version = root["version"], !(version is NSNull) {
            guard let v = version as? String, v == "1.0" else {
                throw p.error("unknown tokenizer version '\(version)' (expected \"1.0\")")
            }
        }
        guard let modelJSON = root["model"] as? [String: Any] else { throw p.error("missing \"model\" object") }
        model = try p.model(modelJSON)
        normalizer = try p.optional(root["normalizer"], "normalizer", p.normalizer)
        preTokenizer = try p.optional(root["pre_tokenizer"], "pre_tokenizer", p.preTokenizer)
        decoder = try p.optional(root["decoder"], "decoder", p.decoder)
        tracksOffsets = preTokenizer?.needsOffsets ?? false
        if case .byteLevel(false, true)? = preTokenizer, normalizer == nil, model is HFBPEModel {
            byteLevelFastPath = true
        } else {
            byteLevelFastPath = false
        }

        // Added tokens, assigned ids as AddedVocabulary::add_tokens does while deserializing.
        let added = try p.addedTokens(root["added_tokens"])
        var ids = HFVocab()
        var byID = [Int32: HFAddedToken]()
        var special = [HFAddedToken]()
        var specialContents = Set<[UInt8]>()
        var classic = [HFAddedToken]()
        for token in added {
            let key = Array(token.content.utf8)
            if token.special && !key.isEmpty && !specialContents.contains(key) {
                special.append(token)
                specialContents.insert(key)
            }
            if token.content.isEmpty || byID.values.contains(token) { continue }
            let id: Int32
            if let existing = ids[key] ?? model.vocabulary[key] {
                id = existing
            } else if let maxAdded = ids.values.max() {
                id = (Int(maxAdded) >= model.entryCount || model.entryCount == 0) ? maxAdded + 1 : Int32(model.entryCount)
            } else {
                id = Int32(model.entryCount)
            }
            ids[key] = id
            byID[id] = token
            if !specialContents.contains(key) { classic.append(token) }
        }
        addedIDs = ids
        // tokenizers 0.23 gives a normalized added token back in its normalized form.
        let tokenNormalizer = normalizer
        addedTokens = byID.mapValues { token in
            guard token.normalized, let normalizer = tokenNormalizer else { return token.content }
            var t = HFText(bytes: Array(token.content.utf8), orig: nil)
            normalizer.apply(&t)
            return String(decoding: t.bytes, as: UTF8.self)
        }
        var raw = [HFAddedMatcher.Entry]()
        var normalized = [HFAddedMatcher.Entry]()
        for token in special + classic {
            guard let id = ids[Array(token.content.utf8)] else { continue }
            if token.normalized {
                var t = HFText(bytes: Array(token.content.utf8), orig: nil)
                normalizer?.apply(&t)
                normalized.append(.init(bytes: t.bytes, id: id, token: token))
            } else {
                raw.append(.init(bytes: Array(token.content.utf8), id: id, token: token))
            }
        }
        rawMatcher = HFAddedMatcher(raw)
        normalizedMatcher = HFAddedMatcher(normalized)

        var maxID = model.idToToken.count - 1
        for id in byID.keys { maxID = max(maxID, Int(id)) }
        vocabularySize = maxID + 1

        var roles = [String: Int32]()
        if let unk = model.unknownID { roles["unk"] = unk }
        let spellings: [(String, Set<String>)] = [
            ("bos", ["<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "[BOS]", "<BOS>"]),
            ("eos", ["</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>", "<|eot_id|>", "[EOS]", "<EOS>"]),
            ("pad", ["<pad>", "<|pad|>", "<|padding|>", "[PAD]", "<PAD>"]),
            ("unk", ["<unk>", "[UNK]", "<UNK>", "<|unk|>"]),
        ]
        for (id, token) in byID.sorted(by: { $0.key < $1.key }) where token.special {
            for (role, names) in spellings where roles[role] == nil && names.contains(token.content) {
                roles[role] = id
            }
        }
        specialIDs = roles
    }

    /// The id of an added token or vocabulary entry.
    public func id(of token: String) -> Int32? {
        let key = Array(token.utf8)
        return addedIDs[key] ?? model.vocabulary[key]
    }

    /// The added token (normalized form if it is normalized) or vocabulary entry of an id.
    public func token(of id: Int32) -> String? {
        if let t = addedTokens[id] { return t }
        guard id >= 0, Int(id) < model.idToToken.count else { return nil }
        return model.idToToken[Int(id)]
    }

    /// `tokenizer.decode(ids, skip_special_tokens=False)`.
    public func decode(_ ids: [Int32]) -> String {
        // Ids with no token are skipped, as tokenizers' decode does.
        let tokens = ids.compactMap { token(of: $0) }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }

    /// `tokenizer.encode(text, add_special_tokens=False).ids`: added tokens in the text are matched.
    public func encode(_ text: String) -> [Int32] {
        var text = text
        let cache = HFThreadCaches.cache(for: model.cacheID)
        return text.withUTF8 { input in
            var out = [Int32]()
            out.reserveCapacity(input.count / 3 + 4)
            for (start, end, id) in rawMatcher.split(input, 0, input.count) {
                if let id { out.append(id); continue }
                if start == end { continue }
                if normalizer == nil && !tracksOffsets {
                    // Without a normalizer the normalized matches are found on the input itself.
                    for (s, e, nid) in normalizedMatcher.split(input, start, end) {
                        if let nid { out.append(nid); continue }
                        if s < e { encodeSegment(input, s, e, cache, into: &out) }
                    }
                    continue
                }
                var t = HFText(bytes: Array(input[start..<end]), orig: tracksOffsets ? (start..<end).map { Int32($0) } : nil)
                normalizer?.apply(&t)
                let pieces: [(Int, Int, Int32?)] = t.bytes.withUnsafeBufferPointer { normalizedMatcher.split($0, 0, $0.count) }
                for (s, e, nid) in pieces {
                    if let nid { out.append(nid); continue }
                    if s < e { encodePieces([t.slice(s, e)], cache, into: &out) }
                }
            }
            return out
        }
    }

    /// Pre-tokenizes and tokenizes input bytes `start..<end` that need no normalization.
    private func encodeSegment(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ cache: HFWordCache,
                               into out: inout [Int32]) {
        if byteLevelFastPath {
            HFPreTokenizer.gpt2Split(input, start, end) { s, e in
                model.tokenize(UnsafeBufferPointer(rebasing: input[s..<e]), byteLevel: true, cache: cache, into: &out)
            }
            return
        }
        if preTokenizer == nil {
            model.tokenize(UnsafeBufferPointer(rebasing: input[start..<end]), byteLevel: false, cache: cache, into: &out)
            return
        }
        encodePieces([HFText(bytes: Array(input[start..<end]), orig: nil)], cache, into: &out)
    }

    private func encodePieces(_ pieces: [HFText], _ cache: HFWordCache, into out: inout [Int32]) {
        let words = preTokenizer?.apply(pieces) ?? pieces
        let unigram = model is HFUnigramModel
        for var word in words where !word.bytes.isEmpty {
            if unigram { word.materializeByteLevel() }
            word.bytes.withUnsafeBufferPointer { model.tokenize($0, byteLevel: word.byteLevel, cache: cache, into: &out) }
        }
    }
}

/// An entry of `added_tokens`.
struct HFAddedToken: Equatable, Sendable {
    var content: String
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
    var special: Bool

    /// Byte equality of the content (Rust's), not Swift's canonical equivalence.
    static func == (a: HFAddedToken, b: HFAddedToken) -> Bool {
        a.content.utf8.elementsEqual(b.content.utf8) && a.singleWord == b.singleWord && a.lstrip == b.lstrip
            && a.rstrip == b.rstrip && a.normalized == b.normalized && a.special == b.special
    }
}

/// AddedVocabulary's matching: leftmost-longest over the token contents (an Aho-Corasick
/// LeftmostLongest automaton in tokenizers), then the single_word, lstrip and rstrip rules.
struct HFAddedMatcher: Sendable {
    struct Entry: Sendable {
        var bytes: [UInt8]
        var id: Int32
        var token: HFAddedToken
    }

    private var entries: [Entry] = []
    private var first = [Bool](repeating: false, count: 256)
    private var children: [[UInt8: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]

    init(_ list: [Entry]) {
        for entry in list where !entry.bytes.isEmpty {
            var node = 0
            for b in entry.bytes {
                if let c = children[node][b] {
                    node = Int(c)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            // Identical contents: the first pattern wins.
            if terminal[node] < 0 { terminal[node] = Int32(entries.count) }
            entries.append(entry)
            first[Int(entry.bytes[0])] = true
        }
    }

    /// Splits `start..<end` into runs of text (id nil) and added tokens, covering the range.
    func split(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [(Int, Int, Int32?)] {
        if entries.isEmpty { return [(start, end, nil)] }
        var splits = [(Int, Int, Int32?)]()
        var startOffset = start
        var i = start
        while i < end {
            guard first[Int(p[i])] else { i += 1; continue }
            // Longest pattern starting at i.
            var node = 0
            var matchEnd = -1
            var matchEntry = -1
            var j = i
            while j < end, let c = children[node][p[j]] {
                node = Int(c)
                j += 1
                if terminal[node] >= 0 { matchEnd = j; matchEntry = Int(terminal[node]) }
            }
            guard matchEntry >= 0 else { i += 1; continue }
            let entry = entries[matchEntry]
            var s = i, e = matchEnd
            i = matchEnd  // the automaton resumes after the match, even when it is rejected below
            if entry.token.singleWord {
                let startSpace = s == start || !HFAddedMatcher.endsWithWord(p, start, s)
                let stopSpace = e == end || !HFAddedMatcher.startsWithWord(p, e, end)
                if !startSpace || !stopSpace { continue }
            }
            if entry.token.lstrip {
                s = max(HFAddedMatcher.trailingSpaceStart(p, start, s), startOffset)
            }
            if entry.token.rstrip {
                e = HFAddedMatcher.leadingSpaceEnd(p, e, end)
            }
            if startOffset < s { splits.append((startOffset, s, nil)) }
            splits.append((s, e, entry.id))
            startOffset = e
        }
        if startOffset != end { splits.append((startOffset, end, nil)) }
        return splits
    }

    /// `\w$` (Rust regex) on `start..<end`.
    static func endsWithWord(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end > start else { return false }
        var s = end - 1
        while s > start && p[s] & 0xC0 == 0x80 { s -= 1 }
        return HFUnicode.isRustWord(HFUnicode.decode(p, s).scalar)
    }

    /// `^\w` (Rust regex) on `start..<end`.
    static func startsWithWord(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end > start else { return false }
        return HFUnicode.isRustWord(HFUnicode.decode(p, start).scalar)
    }

    /// Start of the `\s*$` run of `start..<end`.
    static func trailingSpaceStart(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var e = end
        while e > start {
            var s = e - 1
            while s > start && p[s] & 0xC0 == 0x80 { s -= 1 }
            guard HFUnicode.isWhitespace(HFUnicode.decode(p, s).scalar) else { break }
            e = s
        }
        return e
    }

    /// End of the `^\s*` run of `start..<end`.
    static func leadingSpaceEnd(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var s = start
        while s < end {
            let (c, len) = HFUnicode.decode(p, s)
            guard HFUnicode.isWhitespace(c) else { break }
            s += len
        }
        return s
    }
}

/// Reads tokenizer.json components; every failure names the file and the component.
struct HFParser {
    let file: String
    /// The BPE `model.vocab` object's entries in file order, duplicates kept.
    var vocabEntries: [(String, JSON)] = []

    init(file: String) { self.file = file }

    /// The parsed JSON as Foundation values (objects `[String: Any]`, numbers `NSNumber`, null `NSNull`).
    static func foundationValue(_ json: JSON) -> Any {
        switch json {
        case .null: return NSNull()
        case .bool(let b): return b
        case .int(let i): return NSNumber(value: i)
        case .double(let d): return NSNumber(value: d)
        case .string(let s): return s
        case .array(let items): return items.map(foundationValue)
        case .object(let entries):
            var o = [String: Any](minimumCapacity: entries.count)
            for (k, v) in entries { o[k] = foundationValue(v) }
            return o
        }
    }

    func error(_ reason: String) -> FileError { FileError(.tokenizer, file, reason) }

    func optional<T>(_ value: Any?, _ key: String, _ parse: ([String: Any], String) throws -> T) throws -> T? {
        guard let value, !(value is NSNull) else { return nil }
        guard let object = value as? [String: Any] else { throw error("\"\(key)\" is not an object") }
        return try parse(object, key)
    }

    func string(_ o: [String: Any], _ key: String, _ path: String) throws -> String {
        guard let s = o[key] as? String else { throw error("\(path).\(key) is missing or not a string") }
        return s
    }

    func optionalString(_ o: [String: Any], _ key: String, _ path: String) throws -> String? {
        guard let v = o[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw error("\(path).\(key) is not a string") }
        return s
    }

    func bool(_ o: [String: Any], _ key: String, _ path: String, default value: Bool) throws -> Bool {
        guard let v = o[key], !(v is NSNull) else { return value }
        guard let b = v as? Bool else { throw error("\(path).\(key) is not a boolean") }
        return b
    }

    func int(_ o: [String: Any], _ key: String, _ path: String, default value: Int) throws -> Int {
        guard let v = o[key], !(v is NSNull) else { return value }
        guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
            throw error("\(path).\(key) is not an integer")
        }
        return n.intValue
    }

    func type(_ o: [String: Any], _ path: String) throws -> String {
        guard let t = o["type"] as? String else { throw error("\(path) has no \"type\"") }
        return t
    }

    func singleScalar(_ s: String, _ path: String) throws -> Unicode.Scalar {
        guard s.unicodeScalars.count == 1, let c = s.unicodeScalars.first else {
            throw error("\(path) must be a single character, got '\(s)'")
        }
        return c
    }

    func pattern(_ o: [String: Any], _ path: String) throws -> HFPattern {
        guard let p = o["pattern"] as? [String: Any] else { throw error("\(path).pattern is missing") }
        if let s = p["String"] as? String { return .literal(Array(s.utf8)) }
        if let r = p["Regex"] as? String {
            do {
                return .regex(try HFRegex(r))
            } catch {
                let shown = r.count > 200 ? String(r.prefix(200)).debugDescription + "… (\(r.count) characters)" : r.debugDescription
                throw self.error("\(path).pattern: regex \(shown) uses unsupported syntax (\(error))")
            }
        }
        throw error("\(path).pattern must be {\"String\": …} or {\"Regex\": …}")
    }

    func behavior(_ o: [String: Any], _ path: String, default value: HFSplitBehavior) throws -> HFSplitBehavior {
        guard let v = o["behavior"], !(v is NSNull) else { return value }
        guard let s = v as? String, let b = HFSplitBehavior(rawValue: s) else {
            throw error("\(path).behavior '\(v)' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
        }
        return b
    }

    /// Metaspace's prepend_scheme, or the older add_prefix_space flag.
    func prependScheme(_ o: [String: Any], _ path: String) throws -> HFPrependScheme {
        if let v = o["prepend_scheme"], !(v is NSNull) {
            guard let s = v as? String, let scheme = HFPrependScheme(rawValue: s) else {
                throw error("\(path).prepend_scheme '\(v)' is not one of first, never, always")
            }
            return scheme
        }
        return try bool(o, "add_prefix_space", path, default: true) ? .always : .never
    }

    func metaspaceReplacement(_ o: [String: Any], _ path: String) throws -> Unicode.Scalar {
        let s = try optionalString(o, "replacement", path) ?? optionalString(o, "str_rep", path) ?? "▁"
        return try singleScalar(s, "\(path).replacement")
    }

    func model(_ o: [String: Any]) throws -> any HFModel {
        var kind = o["type"] as? String
        if kind == nil {
            // Files without a tag: tokenizers tries each model's fields in turn.
            if o["merges"] != nil { kind = "BPE" } else if o["vocab"] is [Any] { kind = "Unigram" }
        }
        switch kind {
        case "BPE":
            if let d = o["dropout"], !(d is NSNull) {
                guard let n = d as? NSNumber, n.doubleValue == 0 else {
                    throw error("model.dropout \(d) is not supported (BPE dropout makes encoding random)")
                }
            }
            guard o["vocab"] is [String: Any] else { throw error("model.vocab must be an object") }
            var vocab = [(String, Int32)]()
            vocab.reserveCapacity(vocabEntries.count)
            for (token, value) in vocabEntries {
                guard case .int(let n) = value, n >= 0, n < Int(Int32.max) else {
                    throw error("model.vocab['\(token)'] is not a valid id")
                }
                vocab.append((token, Int32(n)))
            }
            var merges = [(String, String)]()
            if let list = o["merges"], !(list is NSNull) {
                guard let items = list as? [Any] else { throw error("model.merges must be an array") }
                merges.reserveCapacity(items.count)
                for (i, item) in items.enumerated() {
                    if let s = item as? String {
                        // Legacy "a b": split at the first space.
                        guard let space = s.firstIndex(of: " ") else {
                            throw error("model.merges[\(i)] '\(s)' is not two tokens separated by a space")
                        }
                        merges.append((String(s[..<space]), String(s[s.index(after: space)...])))
                    } else if let pair = item as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                        merges.append((a, b))
                    } else {
                        throw error("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
                    }
                }
            }
            return try HFBPEModel(
                vocabEntries: vocab, merges: merges, unknown: try optionalString(o, "unk_token", "model"),
                fuseUnknown: try bool(o, "fuse_unk", "model", default: false),
                byteFallback: try bool(o, "byte_fallback", "model", default: false),
                ignoreMerges: try bool(o, "ignore_merges", "model", default: false),
                prefix: try optionalString(o, "continuing_subword_prefix", "model"),
                suffix: try optionalString(o, "end_of_word_suffix", "model"), file: file)
        case "Unigram":
            guard let items = o["vocab"] as? [Any] else { throw error("model.vocab must be an array of [piece, score]") }
            var pieces = [(String, Double)]()
            pieces.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let pair = item as? [Any], pair.count == 2, let piece = pair[0] as? String,
                      let score = pair[1] as? NSNumber else {
                    throw error("model.vocab[\(i)] is not [piece, score]")
                }
                pieces.append((piece, score.doubleValue))
            }
            var unk: Int? = nil
            if let u = o["unk_id"], !(u is NSNull) { unk = try int(o, "unk_id", "model", default: 0) }
            return try HFUnigramModel(pieces: pieces, unknownID: unk,
                                      byteFallback: try bool(o, "byte_fallback", "model", default: false), file: file)
        case let other?:
            throw error("model type '\(other)' is not supported (BPE and Unigram are)")
        case nil:
            throw error("model has no \"type\" and is neither BPE nor Unigram")
        }
    }

    func normalizer(_ o: [String: Any], _ path: String) throws -> HFNormalizer {
        let t = try type(o, path)
        switch t {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: try bool(o, "strip_left", path, default: true), right: try bool(o, "strip_right", path, default: true))
        case "Replace":
            return .replace(try pattern(o, path), content: Array(try string(o, "content", path).utf8))
        case "Prepend":
            return .prepend(Array(try string(o, "prepend", path).utf8))
        case "Precompiled":
            let b64 = try optionalString(o, "precompiled_charsmap", path) ?? ""
            // An empty charsmap is the identity (tokenizers skips it).
            if b64.isEmpty { return .sequence([]) }
            guard let data = Data(base64Encoded: b64), let map = HFPrecompiled(blob: Array(data)) else {
                throw error("\(path).precompiled_charsmap is not a valid SentencePiece charsmap")
            }
            return .precompiled(map)
        case "Sequence":
            guard let items = o["normalizers"] as? [Any] else { throw error("\(path).normalizers must be an array") }
            return .sequence(try items.enumerated().map { i, item in
                guard let obj = item as? [String: Any] else { throw error("\(path).normalizers[\(i)] is not an object") }
                return try normalizer(obj, "\(path).normalizers[\(i)]")
            })
        default:
            throw error("normalizer type '\(t)' is not supported")
        }
    }

    func preTokenizer(_ o: [String: Any], _ path: String) throws -> HFPreTokenizer {
        let t = try type(o, path)
        switch t {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try bool(o, "add_prefix_space", path, default: true),
                              useRegex: try bool(o, "use_regex", path, default: true))
        case "Metaspace":
            return .metaspace(replacement: try metaspaceReplacement(o, path).value, prepend: try prependScheme(o, path),
                              split: try bool(o, "split", path, default: true))
        case "Split":
            return .split(try pattern(o, path), behavior: try behavior(o, path, default: .removed),
                          invert: try bool(o, "invert", path, default: false))
        case "Digits":
            return .digits(individual: try bool(o, "individual_digits", path, default: false))
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "BertPreTokenizer": return .bert
        case "Punctuation": return .punctuation(try behavior(o, path, default: .isolated))
        case "CharDelimiterSplit":
            return .charDelimiter(try singleScalar(try string(o, "delimiter", path), "\(path).delimiter").value)
        case "Sequence":
            guard let items = o["pretokenizers"] as? [Any] else { throw error("\(path).pretokenizers must be an array") }
            return .sequence(try items.enumerated().map { i, item in
                guard let obj = item as? [String: Any] else { throw error("\(path).pretokenizers[\(i)] is not an object") }
                return try preTokenizer(obj, "\(path).pretokenizers[\(i)]")
            })
        default:
            throw error("pre_tokenizer type '\(t)' is not supported")
        }
    }

    func decoder(_ o: [String: Any], _ path: String) throws -> HFDecoder {
        let t = try type(o, path)
        switch t {
        case "ByteLevel": return .byteLevel
        case "Metaspace":
            return .metaspace(replacement: try metaspaceReplacement(o, path), prependScheme: try prependScheme(o, path))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let start = try int(o, "start", path, default: 0), stop = try int(o, "stop", path, default: 0)
            guard start >= 0, stop >= 0 else { throw error("\(path).start and .stop must not be negative") }
            return .strip(content: try singleScalar(try string(o, "content", path), "\(path).content"), start: start, stop: stop)
        case "Replace":
            return .replace(try pattern(o, path), content: try string(o, "content", path))
        case "Sequence":
            guard let items = o["decoders"] as? [Any] else { throw error("\(path).decoders must be an array") }
            return .sequence(try items.enumerated().map { i, item in
                guard let obj = item as? [String: Any] else { throw error("\(path).decoders[\(i)] is not an object") }
                return try decoder(obj, "\(path).decoders[\(i)]")
            })
        default:
            throw error("decoder type '\(t)' is not supported")
        }
    }

    func addedTokens(_ value: Any?) throws -> [HFAddedToken] {
        guard let value, !(value is NSNull) else { return [] }
        guard let items = value as? [Any] else { throw error("added_tokens must be an array") }
        return try items.enumerated().map { i, item in
            let path = "added_tokens[\(i)]"
            guard let o = item as? [String: Any] else { throw error("\(path) is not an object") }
            let special = try bool(o, "special", path, default: false)
            return HFAddedToken(
                content: try string(o, "content", path), singleWord: try bool(o, "single_word", path, default: false),
                lstrip: try bool(o, "lstrip", path, default: false), rstrip: try bool(o, "rstrip", path, default: false),
                normalized: try bool(o, "normalized", path, default: !special), special: special)
        }
    }
}
