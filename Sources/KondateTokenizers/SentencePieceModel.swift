import KondateSupport
import Foundation

/// The contents of a SentencePiece `.model` file (a proto2 `ModelProto`), as far as encoding, decoding,
/// training and export need it. Fields this type does not name are skipped when reading.
///
/// Field numbers and defaults follow sentencepiece_model.proto. Parsing is by hand and bounds-checked:
/// truncated or corrupted input throws `FileError`, it never traps.
public struct SentencePieceModel: Sendable {
    /// The role of a piece (`ModelProto.SentencePiece.Type`).
    public enum PieceType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The algorithm (`TrainerSpec.ModelType`).
    public enum ModelType: Int32, Sendable {
        case unigram = 1, bpe = 2, word = 3, char = 4
    }

    /// One vocabulary entry; its id is its index in `pieces`.
    public struct Piece: Sendable, Equatable {
        /// The text, with "▁" for a space.
        public var piece: String
        /// Unigram: log probability; BPE: merge priority (higher merges first).
        public var score: Float
        public var type: PieceType
        /// Makes a piece.
        public init(piece: String, score: Float, type: PieceType) {
            self.piece = piece
            self.score = score
            self.type = type
        }
    }

    /// The training options stored in the model (`TrainerSpec`); only `modelType`, `byteFallback`,
    /// `treatWhitespaceAsSuffix` and `unkSurface` change encoding or decoding, the rest are recorded.
    public struct TrainerSpec: Sendable {
        /// model_type (3).
        public var modelType: ModelType = .unigram
        /// vocab_size (4).
        public var vocabSize: Int32 = 8000
        /// character_coverage (10).
        public var characterCoverage: Float = 0.9995
        /// max_sentencepiece_length (20).
        public var maxSentencepieceLength: Int32 = 16
        /// split_by_unicode_script (21); training only.
        public var splitByUnicodeScript = true
        /// split_by_number (23); training only.
        public var splitByNumber = true
        /// split_by_whitespace (22); training only.
        public var splitByWhitespace = true
        /// treat_whitespace_as_suffix (24): the dummy "▁" goes at the end; applies at encode time.
        public var treatWhitespaceAsSuffix = false
        /// allow_whitespace_only_pieces (26); training only.
        public var allowWhitespaceOnlyPieces = false
        /// split_digits (25); training only (encoding needs nothing: the vocabulary has no multi-digit pieces).
        public var splitDigits = false
        /// control_symbols (30).
        public var controlSymbols: [String] = []
        /// user_defined_symbols (31).
        public var userDefinedSymbols: [String] = []
        /// byte_fallback (35): unknown characters become `<0xHH>` pieces.
        public var byteFallback = false
        /// unk_id (40).
        public var unkID: Int32 = 0
        /// bos_id (41), -1 for none.
        public var bosID: Int32 = 1
        /// eos_id (42), -1 for none.
        public var eosID: Int32 = 2
        /// pad_id (43), -1 for none.
        public var padID: Int32 = -1
        /// unk_piece (45).
        public var unkPiece = "<unk>"
        /// bos_piece (46).
        public var bosPiece = "<s>"
        /// eos_piece (47).
        public var eosPiece = "</s>"
        /// pad_piece (48).
        public var padPiece = "<pad>"
        /// How decode renders an unknown piece; nil when the file does not set it (sentencepiece then
        /// uses " ⁇ ").
        public var unkSurface: String?
        /// The proto2 defaults.
        public init() {}
    }

    /// Normalization options (`NormalizerSpec`), for the normalizer and the denormalizer.
    public struct NormalizerSpec: Sendable {
        /// name (1): "identity", "nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf" or "user_defined".
        public var name = ""
        /// The compiled rules: a 4-byte trie size, a Darts-clone double array, NUL-terminated outputs.
        public var precompiledCharsmap: [UInt8] = []
        /// add_dummy_prefix (3): a "▁" before the text (after it with treat_whitespace_as_suffix).
        public var addDummyPrefix = true
        /// remove_extra_whitespaces (4): drop leading and trailing spaces, collapse runs.
        public var removeExtraWhitespaces = true
        /// escape_whitespaces (5): " " becomes "▁".
        public var escapeWhitespaces = true
        /// Only read by the trainer, which compiles it into `precompiledCharsmap`.
        public var normalizationRuleTSV = ""
        /// The proto2 defaults.
        public init() {}
    }

    /// The vocabulary; a piece's id is its index.
    public var pieces: [Piece] = []
    /// Field 2.
    public var trainerSpec = TrainerSpec()
    /// Field 3.
    public var normalizerSpec = NormalizerSpec()
    /// Present when the file has one (field 5); applied to decoded text only if it has a charsmap.
    public var denormalizerSpec: NormalizerSpec?

    /// An empty model with default specs.
    public init() {}

    /// Parses a serialized `ModelProto`; `file` names the source in errors.
    public init(data: Data, file: String) throws {
        guard !data.isEmpty else { throw FileError(.tokenizer, file, "empty file; not a SentencePiece model") }
        if let first = data.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }), first == UInt8(ascii: "{") {
            throw FileError(.tokenizer, file, "looks like JSON (a Hugging Face tokenizer.json?), not a SentencePiece .model (protobuf)")
        }
        self.init()
        let bytes = [UInt8](data)
        do {
            var reader = SentencePieceProtoReader(bytes, 0..<bytes.count)
            while let field = try reader.nextField() {
                switch (field.number, field.value) {
                case (1, .bytes(let range)): pieces.append(try Self.parsePiece(bytes, range))
                case (2, .bytes(let range)): try Self.parseTrainerSpec(bytes, range, into: &trainerSpec)
                case (3, .bytes(let range)): try Self.parseNormalizerSpec(bytes, range, into: &normalizerSpec)
                case (5, .bytes(let range)):
                    var spec = denormalizerSpec ?? NormalizerSpec()
                    try Self.parseNormalizerSpec(bytes, range, into: &spec)
                    denormalizerSpec = spec
                default: break  // self_test_data (4), extensions and unknown fields
                }
            }
        } catch let error as SentencePieceProtoReader.Failure {
            throw FileError(.tokenizer, file, "not a valid SentencePiece model: \(error.reason)")
        }
    }

    // MARK: - Messages

    private static func parsePiece(_ bytes: [UInt8], _ range: Range<Int>) throws -> Piece {
        var reader = SentencePieceProtoReader(bytes, range)
        var piece = Piece(piece: "", score: 0, type: .normal)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .bytes(let r)): piece.piece = try text(bytes, r, "piece")
            case (2, .fixed32(let bits)): piece.score = Float(bitPattern: bits)
            // proto2 keeps an unknown enum value out of the field, which then reads as its default.
            case (3, .varint(let v)): if let t = PieceType(rawValue: Int32(truncatingIfNeeded: v)) { piece.type = t }
            default: break
            }
        }
        return piece
    }

    private static func parseTrainerSpec(_ bytes: [UInt8], _ range: Range<Int>, into spec: inout TrainerSpec) throws {
        var reader = SentencePieceProtoReader(bytes, range)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (3, .varint(let v)): if let t = ModelType(rawValue: Int32(truncatingIfNeeded: v)) { spec.modelType = t }
            case (4, .varint(let v)): spec.vocabSize = Int32(truncatingIfNeeded: v)
            case (10, .fixed32(let bits)): spec.characterCoverage = Float(bitPattern: bits)
            case (20, .varint(let v)): spec.maxSentencepieceLength = Int32(truncatingIfNeeded: v)
            case (21, .varint(let v)): spec.splitByUnicodeScript = v != 0
            case (22, .varint(let v)): spec.splitByWhitespace = v != 0
            case (23, .varint(let v)): spec.splitByNumber = v != 0
            case (24, .varint(let v)): spec.treatWhitespaceAsSuffix = v != 0
            case (25, .varint(let v)): spec.splitDigits = v != 0
            case (26, .varint(let v)): spec.allowWhitespaceOnlyPieces = v != 0
            case (30, .bytes(let r)): spec.controlSymbols.append(try text(bytes, r, "control symbol"))
            case (31, .bytes(let r)): spec.userDefinedSymbols.append(try text(bytes, r, "user-defined symbol"))
            case (35, .varint(let v)): spec.byteFallback = v != 0
            case (40, .varint(let v)): spec.unkID = Int32(truncatingIfNeeded: v)
            case (41, .varint(let v)): spec.bosID = Int32(truncatingIfNeeded: v)
            case (42, .varint(let v)): spec.eosID = Int32(truncatingIfNeeded: v)
            case (43, .varint(let v)): spec.padID = Int32(truncatingIfNeeded: v)
            case (44, .bytes(let r)): spec.unkSurface = try text(bytes, r, "unk_surface")
            case (45, .bytes(let r)): spec.unkPiece = try text(bytes, r, "unk_piece")
            case (46, .bytes(let r)): spec.bosPiece = try text(bytes, r, "bos_piece")
            case (47, .bytes(let r)): spec.eosPiece = try text(bytes, r, "eos_piece")
            case (48, .bytes(let r)): spec.padPiece = try text(bytes, r, "pad_piece")
            default: break
            }
        }
    }

    private static func parseNormalizerSpec(_ bytes: [UInt8], _ range: Range<Int>, into spec: inout NormalizerSpec) throws {
        var reader = SentencePieceProtoReader(bytes, range)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .bytes(let r)): spec.name = try text(bytes, r, "normalizer name")
            case (2, .bytes(let r)): spec.precompiledCharsmap = Array(bytes[r])
            case (3, .varint(let v)): spec.addDummyPrefix = v != 0
            case (4, .varint(let v)): spec.removeExtraWhitespaces = v != 0
            case (5, .varint(let v)): spec.escapeWhitespaces = v != 0
            case (6, .bytes(let r)): spec.normalizationRuleTSV = try text(bytes, r, "normalization_rule_tsv")
            default: break
            }
        }
    }

    /// A string field; invalid UTF-8 is refused because Swift strings (and Python's) cannot hold it.
    private static func text(_ bytes: [UInt8], _ range: Range<Int>, _ what: String) throws -> String {
        guard let s = String(validating: bytes[range], as: UTF8.self) else {
            throw SentencePieceProtoReader.Failure(reason: "\(what) at byte \(range.lowerBound) is not valid UTF-8")
        }
        return s
    }
}

/// Reads protobuf wire format fields from a byte range, checking every length against the range.
struct SentencePieceProtoReader {
    struct Failure: Error {
        var reason: String
    }

    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(Range<Int>)
        case group
    }

    struct Field {
        var number: UInt64
        var value: Value
    }

    private let bytes: [UInt8]
    private var position: Int
    private let end: Int

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    /// The next field, or nil at the end of the range.
    mutating func nextField() throws -> Field? {
        guard position < end else { return nil }
        let at = position
        let tag = try varint()
        let number = tag >> 3
        guard number > 0 else { throw Failure(reason: "field number 0 at byte \(at)") }
        switch tag & 7 {
        case 0: return Field(number: number, value: .varint(try varint()))
        case 1: return Field(number: number, value: .fixed64(try fixed(8)))
        case 2:
            let length = try varint()
            guard length <= UInt64(end - position) else {
                throw Failure(reason: "field \(number) at byte \(at) is \(length) bytes long but only \(end - position) remain (truncated file?)")
            }
            let start = position
            position += Int(length)
            return Field(number: number, value: .bytes(start..<position))
        case 3:
            try skipGroup(number, depth: 0)
            return Field(number: number, value: .group)
        case 5: return Field(number: number, value: .fixed32(UInt32(truncatingIfNeeded: try fixed(4))))
        default: throw Failure(reason: "wire type \(tag & 7) of field \(number) at byte \(at) is not valid")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw Failure(reason: "truncated varint at byte \(position)") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw Failure(reason: "varint longer than 10 bytes at byte \(position - 1)") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func fixed(_ size: Int) throws -> UInt64 {
        guard end - position >= size else { throw Failure(reason: "truncated \(size * 8)-bit value at byte \(position)") }
        var result: UInt64 = 0
        for i in 0..<size { result |= UInt64(bytes[position + i]) << UInt64(8 * i) }
        position += size
        return result
    }

    /// Skips a (deprecated) group up to its end tag; nesting is bounded so hostile input cannot recurse deeply.
    private mutating func skipGroup(_ number: UInt64, depth: Int) throws {
        guard depth < 32 else { throw Failure(reason: "groups nested too deeply") }
        while true {
            guard position < end else { throw Failure(reason: "group \(number) is not closed") }
            let tag = try varint()
            switch tag & 7 {
            case 0: _ = try varint()
            case 1: _ = try fixed(8)
            case 2:
                let length = try varint()
                guard length <= UInt64(end - position) else { throw Failure(reason: "truncated field in group \(number)") }
                position += Int(length)
            case 3: try skipGroup(tag >> 3, depth: depth + 1)
            case 4:
                guard tag >> 3 == number else { throw Failure(reason: "group \(number) closed by end tag \(tag >> 3)") }
                return
            case 5: _ = try fixed(4)
            default: throw Failure(reason: "wire type \(tag & 7) inside group \(number) is not valid")
            }
        }
    }
}
