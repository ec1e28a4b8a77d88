import KondateRecipe
import Foundation

/// Megatron-LM's indexed dataset element types (`DType` in megatron/core/datasets/indexed_dataset.py).
public enum MegatronDType: UInt8, Sendable {
    case uint8 = 1, int8 = 2, int16 = 3, int32 = 4, int64 = 5, float64 = 6, float32 = 7, uint16 = 8

    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .float32: return 4
        case .int64, .float64: return 8
        }
    }

    /// Megatron's `DType.optimal_dtype`: uint16 below 65 500 token ids, int32 otherwise.
    public static func optimal(vocabularySize: Int) -> MegatronDType {
        vocabularySize < 65_500 ? .uint16 : .int32
    }
}

/// Writes a Megatron `.bin/.idx` pair exactly as `IndexedDatasetBuilder` does: one sequence per
/// document, the `.bin` the concatenated tokens, the `.idx` the header and index arrays
/// (formats §3.1). Streaming: tokens go to disk as they come; only 12 bytes per document stay in memory.
/// Files are written under temporary names and renamed when finished, so a crash leaves no half pair.
public final class IndexedDatasetWriter {
    public let prefix: String
    public let dtype: MegatronDType
    private let bin: FileHandle
    private var buffer: [UInt8] = []
    private var lengths: [Int32] = []
    public private(set) var tokens = 0
    private var finished = false

    public init(prefix: String, dtype: MegatronDType) throws {
        guard dtype == .uint16 || dtype == .int32 || dtype == .int64 || dtype == .uint8 else {
            throw KondateError(.inputData, "token datasets are written as uint8, uint16, int32 or int64, not \(dtype)")
        }
        self.prefix = prefix
        self.dtype = dtype
        let dir = URL(fileURLWithPath: prefix).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = prefix + ".bin.tmp"
        _ = FileManager.default.createFile(atPath: tmp, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: tmp) else { throw KondateError(.inputData, "cannot write '\(tmp)'") }
        bin = handle
        buffer.reserveCapacity(1 << 20)
    }

    deinit { try? bin.close() }

    /// Appends one document's tokens (append the EOD id yourself if wanted).
    public func add(document ids: [Int32]) throws {
        for id in ids {
            switch dtype {
            case .uint8:
                guard id >= 0, id <= 255 else { throw KondateError(.inputData, "token id \(id) does not fit uint8") }
                buffer.append(UInt8(id))
            case .uint16:
                guard id >= 0, id <= 65_535 else { throw KondateError(.inputData, "token id \(id) does not fit uint16 (vocabulary too large for \(prefix).bin)") }
                let v = UInt16(id)
                buffer.append(UInt8(v & 0xFF)); buffer.append(UInt8(v >> 8))
            case .int32:
                let v = UInt32(bitPattern: id)
                buffer.append(UInt8(v & 0xFF)); buffer.append(UInt8((v >> 8) & 0xFF)); buffer.append(UInt8((v >> 16) & 0xFF)); buffer.append(UInt8(v >> 24))
            default:
                let v = UInt64(bitPattern: Int64(id))
                for k in 0..<8 { buffer.append(UInt8((v >> (8 * k)) & 0xFF)) }
            }
        }
        lengths.append(Int32(ids.count))
        tokens += ids.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try bin.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the `.idx`, syncs both files and renames them into place.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        try flush()
        try bin.synchronize()
        try bin.close()
        var idx = Data()
        idx.append(contentsOf: Array("MMIDIDX\0\0".utf8))
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { idx.append(contentsOf: $0) } }
        u64(1)
        idx.append(dtype.rawValue)
        u64(UInt64(lengths.count))
        u64(UInt64(lengths.count + 1))
        var body = [UInt8]()
        body.reserveCapacity(lengths.count * 20 + 8)
        for l in lengths { withUnsafeBytes(of: l.littleEndian) { body.append(contentsOf: $0) } }
        var pointer: Int64 = 0
        for l in lengths {
            withUnsafeBytes(of: pointer.littleEndian) { body.append(contentsOf: $0) }
            pointer += Int64(l) * Int64(dtype.size)
        }
        for d in 0...lengths.count { withUnsafeBytes(of: Int64(d).littleEndian) { body.append(contentsOf: $0) } }
        idx.append(contentsOf: body)
        let idxTmp = prefix + ".idx.tmp"
        try idx.write(to: URL(fileURLWithPath: idxTmp))
        for ext in ["bin", "idx"] {
            let final = prefix + "." + ext
            if FileManager.default.fileExists(atPath: final) { try FileManager.default.removeItem(atPath: final) }
            try FileManager.default.moveItem(atPath: prefix + "." + ext + ".tmp", toPath: final)
        }
    }
}

/// Reads a Megatron `.bin/.idx` pair (memory-mapped), validating that the two agree.
public struct IndexedDataset: @unchecked Sendable {
    public let prefix: String
    public let dtype: MegatronDType
    public let sequenceLengths: [Int32]
    public let sequencePointers: [Int64]
    public let documentIndices: [Int64]
    private let bin: Data

    public var count: Int { sequenceLengths.count }
    public var totalTokens: Int { sequenceLengths.reduce(0) { $0 + Int($1) } }

    public init(prefix: String) throws {
        let idxPath = prefix + ".idx", binPath = prefix + ".bin"
        guard let idx = Self.mapped(idxPath) else {
            throw KondateError(.inputData, "cannot read '\(idxPath)'")
        }
        guard let bin = Self.mapped(binPath) else {
            throw KondateError(.inputData, "cannot read '\(binPath)' (the data file of '\(idxPath)')")
        }
        func bad(_ why: String) -> KondateError { KondateError(.inputData, "'\(idxPath)' is not a valid Megatron index: \(why)") }
        guard idx.count >= 34, idx.prefix(9).elementsEqual(Array("MMIDIDX\0\0".utf8)) else { throw bad("wrong magic bytes") }
        func u64(_ at: Int) -> UInt64 { idx.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian } }
        guard u64(9) == 1 else { throw bad("version \(u64(9)), expected 1") }
        guard let dtype = MegatronDType(rawValue: idx[idx.startIndex + 17]) else { throw bad("unknown dtype code \(idx[idx.startIndex + 17])") }
        guard dtype != .float32 && dtype != .float64 else {
            throw bad("dtype \(dtype) (code \(dtype.rawValue)) holds no token ids; token datasets are uint8, int8, int16, uint16, int32 or int64")
        }
        let s = u64(18), d = u64(26)
        guard s < 1 << 40, d < 1 << 40 else { throw bad("implausible counts") }
        let S = Int(s), D = Int(d)
        let expected = 34 + 4 * S + 8 * S + 8 * D
        guard idx.count >= expected else { throw bad("truncated: \(idx.count) bytes, the header promises \(expected)") }
        var lengths = [Int32](repeating: 0, count: S)
        var pointers = [Int64](repeating: 0, count: S)
        var documents = [Int64](repeating: 0, count: D)
        idx.withUnsafeBytes { raw in
            for i in 0..<S { lengths[i] = raw.loadUnaligned(fromByteOffset: 34 + 4 * i, as: Int32.self).littleEndian }
            for i in 0..<S { pointers[i] = raw.loadUnaligned(fromByteOffset: 34 + 4 * S + 8 * i, as: Int64.self).littleEndian }
            for i in 0..<D { documents[i] = raw.loadUnaligned(fromByteOffset: 34 + 12 * S + 8 * i, as: Int64.self).littleEndian }
        }
        var offset: Int64 = 0
        for i in 0..<S {
            guard lengths[i] >= 0, pointers[i] == offset else { throw bad("sequence \(i) does not follow the previous one") }
            offset += Int64(lengths[i]) * Int64(dtype.size)
        }
        guard documents.first == 0, documents.last == Int64(S), zip(documents, documents.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw bad("document indices are not a non-decreasing list from 0 to \(S)")
        }
        guard Int64(bin.count) == offset else {
            throw KondateError(.inputData, "'\(binPath)' holds \(bin.count) bytes but '\(idxPath)' describes \(offset): the pair disagree (rebuild both)")
        }
        if dtype == .int64 {
            // Token ids are 32-bit here: an int64 dataset is read only if every id fits (checked once, here).
            let count = bin.count / 8
            let outside: Int? = bin.withUnsafeBytes { raw in
                (0..<count).first { k in Int32(exactly: raw.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self).littleEndian) == nil }
            }
            if let k = outside {
                throw KondateError(.inputData, "'\(binPath)': token \(k) of the int64 data is outside the 32-bit range of token ids; " +
                                   "the dataset does not belong to a vocabulary Kondate can train")
            }
        }
        self.prefix = prefix
        self.dtype = dtype
        sequenceLengths = lengths
        sequencePointers = pointers
        documentIndices = documents
        self.bin = bin
    }

    /// The file memory-mapped; an empty file is empty data without a mapping (Foundation's mapped read
    /// leaks a page for an empty file, found by scripts/fuzz.sh indexed-dataset).
    static func mapped(_ path: String) -> Data? {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else { return nil }
        if size == 0 { return Data() }
        return try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    }

    /// Tokens of sequence `i`, from `offset` for `length` tokens (the rest of it by default).
    public func tokens(_ i: Int, offset: Int = 0, length: Int? = nil) -> [Int32] {
        let n = length ?? (Int(sequenceLengths[i]) - offset)
        let start = Int(sequencePointers[i]) + offset * dtype.size
        return bin.withUnsafeBytes { raw in
            (0..<n).map { k -> Int32 in
                let at = start + k * dtype.size
                switch dtype {
                case .uint8: return Int32(raw.load(fromByteOffset: at, as: UInt8.self))
                case .int8: return Int32(raw.load(fromByteOffset: at, as: Int8.self))
                case .uint16: return Int32(raw.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian)
                case .int16: return Int32(raw.loadUnaligned(fromByteOffset: at, as: Int16.self).littleEndian)
                case .int32: return raw.loadUnaligned(fromByteOffset: at, as: Int32.self).littleEndian
                // Checked to fit when the dataset was opened.
                case .int64: return Int32(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: at, as: Int64.self).littleEndian)
                case .float32, .float64: preconditionFailure("float datasets are refused when opened")
                }
            }
        }
    }
}
