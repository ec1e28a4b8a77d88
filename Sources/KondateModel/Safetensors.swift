import Foundation
import KondateSupport


/// A safetensors file (huggingface/safetensors format): an 8-byte little-endian header length, a JSON
/// header, then the tensor bytes. The reader validates everything before trusting it: header size
/// (at most 100 MB, inside the file), JSON, known dtypes, shapes, byte ranges inside the buffer and
/// sized `numel × dtype size`, no duplicates, and — as the reference `validate()` does — ranges that
/// tile the buffer with no overlap and no hole.
public struct SafetensorsFile: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// Byte range within the data buffer.
        public var range: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public static let maxHeaderSize = 100_000_000
    /// Bytes per element of each dtype this reader knows.
    public static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]

    public let file: String
    /// Tensors in buffer order.
    public let entries: [Entry]
    public let metadata: [String: String]
    private let data: Data
    private let bufferStart: Int
    private let byName: [String: Int]

    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw FileError(.safetensors, path, "cannot read the file")
        }
        try self.init(data: data, file: path)
    }

    public init(data: Data, file: String) throws {
        func fail(_ why: String) -> FileError { FileError(.safetensors, file, "not a valid safetensors file: \(why)") }
        guard data.count >= 8 else { throw fail("shorter than the 8-byte header length") }
        let n = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian }
        guard n <= UInt64(Self.maxHeaderSize) else { throw fail("header length \(n) exceeds \(Self.maxHeaderSize) bytes") }
        guard 8 + Int(n) <= data.count else { throw fail("header length \(n) runs past the end of the \(data.count)-byte file") }
        let headerBytes = data[data.startIndex + 8 ..< data.startIndex + 8 + Int(n)]
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        let parsed: Result<JSON, JSONParser.Failure> = Array(headerBytes).withUnsafeBufferPointer { buffer in
            do throws(JSONParser.Failure) { return .success(try JSONParser.parse(buffer)) } catch { return .failure(error) }
        }
        guard case let .success(.object(fields)) = parsed else {
            if case let .failure(e) = parsed { throw fail("header JSON: \(e.description)") }
            throw fail("the header is not a JSON object")
        }
        let bufferSize = data.count - 8 - Int(n)
        var seen = Set<String>()
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in fields {
            guard seen.insert(name).inserted else { throw fail("tensor '\(name)' appears twice") }
            if name == "__metadata__" {
                guard case let .object(pairs) = value else { throw fail("__metadata__ is not an object") }
                for (k, v) in pairs {
                    guard case let .string(s) = v else { throw fail("__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard case let .object(info) = value,
                  case let .string(dtype)? = info.first(where: { $0.0 == "dtype" })?.1,
                  case let .array(shapeValues)? = info.first(where: { $0.0 == "shape" })?.1,
                  case let .array(offsetValues)? = info.first(where: { $0.0 == "data_offsets" })?.1 else {
                throw fail("tensor '\(name)' needs dtype, shape and data_offsets")
            }
            guard let size = Self.dtypeSizes[dtype] else { throw fail("tensor '\(name)' has unknown dtype '\(dtype)'") }
            var shape: [Int] = []
            var count = 1
            for v in shapeValues {
                guard case let .int(d) = v, d >= 0 else { throw fail("tensor '\(name)' has a shape entry that is not a non-negative integer") }
                let product = count.multipliedReportingOverflow(by: d)
                guard !product.overflow, product.partialValue <= bufferSize else { throw fail("tensor '\(name)' has an impossible shape \(shapeValues.count)-d") }
                count = product.partialValue
                shape.append(d)
            }
            guard offsetValues.count == 2, case let .int(begin) = offsetValues[0], case let .int(end) = offsetValues[1],
                  begin >= 0, begin <= end, end <= bufferSize else {
                throw fail("tensor '\(name)' has data_offsets outside the \(bufferSize)-byte buffer")
            }
            guard end - begin == count * size else {
                throw fail("tensor '\(name)' spans \(end - begin) bytes but \(shape) × \(dtype) needs \(count * size)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, range: begin..<end))
        }
        entries.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var position = 0
        for e in entries {
            if e.range.lowerBound < position { throw fail("tensor '\(e.name)' overlaps the previous tensor") }
            if e.range.lowerBound > position { throw fail("bytes \(position)..<\(e.range.lowerBound) belong to no tensor") }
            position = e.range.upperBound
        }
        guard position == bufferSize else { throw fail("bytes \(position)..<\(bufferSize) at the end belong to no tensor") }
        self.file = file
        self.entries = entries
        byName = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
        self.metadata = metadata
        self.data = data
        bufferStart = 8 + Int(n)
    }

    public func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The tensor as Float32 values (F32, BF16 and F16 are converted; other dtypes are refused).
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entry(name) else { throw FileError(.safetensors, file, "no tensor '\(name)'") }
        return try [Float](unsafeUninitializedCapacity: e.count) { buffer, initialized in
            try read(name, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<e.count]))
            initialized = e.count
        }
    }

    /// Reads the tensor into `out` (exactly its element count), converting BF16 and F16 to F32.
    public func read(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let e = entry(name) else { throw FileError(.safetensors, file, "no tensor '\(name)'") }
        guard out.count == e.count else {
            throw FileError(.safetensors, file, "tensor '\(name)' has \(e.count) values; \(out.count) expected")
        }
        let start = bufferStart + e.range.lowerBound
        try data.withUnsafeBytes { raw in
            switch e.dtype {
            case "F32":
                for i in 0..<e.count { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self).littleEndian) }
            case "BF16":
                for i in 0..<e.count { out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self).littleEndian) << 16) }
            case "F16":
                for i in 0..<e.count { out[i] = Self.half(raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self).littleEndian) }
            default: throw FileError(.safetensors, file, "tensor '\(name)' is \(e.dtype); Kondate reads F32, BF16 and F16")
            }
        }
    }

    /// IEEE 754 half → single, including subnormals, infinities and NaN.
    static func half(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let value = Float(mantissa) * Float(bitPattern: 0x3380_0000)   // 2^-24
            return sign == 0 ? value : -value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// Writes F32 tensors as the reference writer does: sorted by name (one dtype, so alignment ties),
    /// packed back to back, the header padded with spaces to a multiple of 8 bytes; written to a
    /// temporary file, synced and renamed (`AtomicFile`).
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:],
                             to path: String) throws {
        try write(tensors.map { t in (t.name, t.shape, { body in try t.values.withUnsafeBufferPointer { try body($0) } }) },
                  metadata: metadata, to: path)
    }

    /// A tensor to write: its values are lent to `body` without copying.
    public typealias TensorSource = (name: String, shape: [Int], values: ((UnsafeBufferPointer<Float>) throws -> Void) throws -> Void)

    /// Bytes per element of the dtypes Kondate writes.
    public static let writableDTypes: [String: Int] = ["F32": 4, "BF16": 2, "F16": 2]

    /// Float32 → bfloat16 bits, rounding to nearest even (as torch's `.to(torch.bfloat16)`); NaN stays NaN.
    static func bfloat16(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let bits = x.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// Writes tensors whose values are read from the caller's buffers: F32 without copying, BF16 and
    /// F16 converted with round-to-nearest-even (values beyond F16's range become ±inf, as in torch).
    public static func write(_ tensors: [TensorSource], metadata: [String: String] = [:], dtype: String = "F32", to path: String) throws {
        guard let width = writableDTypes[dtype] else {
            throw FileError(.safetensors, path, "cannot write dtype '\(dtype)'; Kondate writes F32, BF16 and F16")
        }
        let sorted = tensors.sorted { $0.name < $1.name }
        var header: [(String, JSON)] = []
        if !metadata.isEmpty { header.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        var seen = Set<String>()
        var offset = 0
        for t in sorted {
            guard seen.insert(t.name).inserted else { throw FileError(.safetensors, path, "tensor '\(t.name)' is given twice") }
            let count = t.shape.reduce(1, *)
            header.append((t.name, .object([("dtype", .string(dtype)), ("shape", .array(t.shape.map(JSON.int))),
                                             ("data_offsets", .array([.int(offset), .int(offset + width * count)]))])))
            offset += width * count
        }
        var json = Array(JSON.object(header).rendered(pretty: false).utf8)
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        try AtomicFile.write(to: path) { handle in
            var head = Data(capacity: 8 + json.count)
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { head.append(contentsOf: $0) }
            head.append(contentsOf: json)
            try handle.write(contentsOf: head)
            for t in sorted {
                try t.values { values in
                    guard values.count == t.shape.reduce(1, *) else {
                        throw FileError(.safetensors, path, "tensor '\(t.name)' has \(values.count) values for shape \(t.shape)")
                    }
                    switch dtype {
                    case "F32":
                        // Little-endian hosts store F32 as the format does.
                        try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: values.baseAddress ?? UnsafePointer(bitPattern: 8)!),
                                                          count: values.count * 4, deallocator: .none))
                    default:
                        var halves = [UInt16](repeating: 0, count: values.count)
                        for i in 0..<values.count {
                            halves[i] = (dtype == "BF16" ? bfloat16(values[i]) : Float16(values[i]).bitPattern).littleEndian
                        }
                        try halves.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
                    }
                }
            }
        }
    }
}
