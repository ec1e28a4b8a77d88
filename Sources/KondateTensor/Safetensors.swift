import Foundation
import KondateSupport

/// Why a safetensors file was refused.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var reason: String
    public init(file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): \(reason)" }
}

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

    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw SafetensorsError(file: path, "cannot read the file")
        }
        try self.init(data: data, file: path)
    }

    public init(data: Data, file: String) throws {
        func fail(_ why: String) -> SafetensorsError { SafetensorsError(file: file, "not a valid safetensors file: \(why)") }
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
        self.metadata = metadata
        self.data = data
        bufferStart = 8 + Int(n)
    }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The tensor as Float32 values (F32, BF16 and F16 are converted; other dtypes are refused).
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entry(name) else { throw SafetensorsError(file: file, "no tensor '\(name)'") }
        let start = bufferStart + e.range.lowerBound
        return try data.withUnsafeBytes { raw -> [Float] in
            switch e.dtype {
            case "F32": return (0..<e.count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: start + 4 * $0, as: UInt32.self).littleEndian) }
            case "BF16": return (0..<e.count).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: start + 2 * $0, as: UInt16.self).littleEndian) << 16) }
            case "F16": return (0..<e.count).map { Self.half(raw.loadUnaligned(fromByteOffset: start + 2 * $0, as: UInt16.self).littleEndian) }
            default: throw SafetensorsError(file: file, "tensor '\(name)' is \(e.dtype); Kondate reads F32, BF16 and F16")
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
    /// temporary file, synced and renamed.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:],
                             to path: String) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header: [(String, JSON)] = []
        if !metadata.isEmpty { header.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        var offset = 0
        for t in sorted {
            guard t.shape.reduce(1, *) == t.values.count else {
                throw SafetensorsError(file: path, "tensor '\(t.name)' has \(t.values.count) values for shape \(t.shape)")
            }
            header.append((t.name, .object([("dtype", .string("F32")), ("shape", .array(t.shape.map(JSON.int))),
                                             ("data_offsets", .array([.int(offset), .int(offset + 4 * t.values.count)]))])))
            offset += 4 * t.values.count
        }
        var json = Array(JSON.object(header).rendered(pretty: false).utf8)
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for t in sorted { t.values.withUnsafeBytes { out.append(contentsOf: $0) } }   // little-endian hosts
        let tmp = path + ".tmp"
        try out.write(to: URL(fileURLWithPath: tmp))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
        try handle.synchronize()
        try handle.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
    }
}
