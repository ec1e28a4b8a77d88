import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// TensorBoard event files: a TFRecord stream of serialized `Event` protos.
//
// Framing (TFRecord, tensorflow/core/lib/io/record_writer.cc; tensorboard/summary/writer/record_writer.py),
// little-endian, repeated until end of file:
//
//     uint64  length
//     uint32  masked_crc32c(the 8 length bytes)
//     byte    data[length]            serialized Event
//     uint32  masked_crc32c(data)
//
// Protos (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto; mirrored in
// tensorboard/compat/proto): Event{wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary)}, Summary{value = 1 (repeated Value)}, Value{tag = 1 (string),
// simple_value = 2 (float)}. TensorBoard turns a legacy `simple_value` into a scalar-plugin summary on
// load (tensorboard/data_compat.py, `_migrate_scalar_value`), so that form is all a scalar needs.

/// CRC-32C (Castagnoli, RFC 3720 §B.4): reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF,
/// final xor 0xFFFFFFFF. This is the checksum TFRecord framing uses, in its masked form.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C of `bytes`; `checksum("123456789".utf8) == 0xE3069283`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        let fast = bytes.withContiguousStorageIfAvailable { update(0xFFFF_FFFF, $0) }
        if let fast { return fast ^ 0xFFFF_FFFF }
        return Array(bytes).withUnsafeBufferPointer { update(0xFFFF_FFFF, $0) } ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC, `((crc >> 15) | (crc << 17)) + 0xA282EAD8` modulo 2^32
    /// (tensorflow/core/lib/hash/crc32c.h, `Mask`). Masking keeps a CRC stored next to the data it covers
    /// from being confused with a CRC of data that itself contains CRCs.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    private static func update(_ start: UInt32, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc = start
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc
    }
}

/// A failure writing or reading an event file. `offset` is the byte offset, within `path`, of the record
/// at fault, when the failure concerns one record.
public struct TensorBoardError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var offset: Int?
    public var reason: String

    public init(path: String, offset: Int? = nil, reason: String) {
        self.path = path
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let offset { return "\(path): record at byte \(offset): \(reason)" }
        return "\(path): \(reason)"
    }
}

/// Protobuf wire-format encoder (https://protobuf.dev/programming-guides/encoding/) for the few field
/// kinds event files use.
struct ProtobufWriter {
    /// Wire types: varint 0, fixed64 1, length-delimited 2, fixed32 5.
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: WireType) {
        varint(UInt64(field) << 3 | wireType.rawValue)
    }

    /// `double`: fixed64, IEEE 754 bits little-endian.
    mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        let bits = value.bitPattern
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8))) }
    }

    /// `float`: fixed32, IEEE 754 bits little-endian.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        let bits = value.bitPattern
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: bits >> (UInt32(i) * 8))) }
    }

    /// `int64`: varint of the two's-complement value (a negative value takes ten bytes).
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    mutating func bytes(_ field: Int, _ value: some Collection<UInt8>) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    /// An embedded message, encoded by `body` and written length-delimited.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }
}

/// Protobuf wire-format decoder over one message's bytes; unknown fields are skipped by wire type.
struct ProtobufReader {
    struct Malformed: Error { var reason: String }

    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var isAtEnd: Bool { index >= bytes.endIndex }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.endIndex else { throw Malformed(reason: "varint runs past the end of the message") }
            let byte = bytes[index]
            index += 1
            if shift < 64 { result |= UInt64(byte & 0x7F) << shift }
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift >= 70 { throw Malformed(reason: "varint longer than 10 bytes") }
        }
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func key() throws -> (field: Int, wireType: UInt64)? {
        if isAtEnd { return nil }
        let key = try varint()
        let field = key >> 3
        guard field > 0, field <= 0x1FFF_FFFF else { throw Malformed(reason: "invalid field number \(field)") }
        return (Int(field), key & 7)
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, bytes.endIndex - index >= count else {
            throw Malformed(reason: "field of \(count) bytes runs past the end of the message")
        }
        defer { index += count }
        return bytes[index..<index + count]
    }

    mutating func fixed64() throws -> UInt64 {
        var value: UInt64 = 0
        for (i, byte) in try take(8).enumerated() { value |= UInt64(byte) << (UInt64(i) * 8) }
        return value
    }

    mutating func fixed32() throws -> UInt32 {
        var value: UInt32 = 0
        for (i, byte) in try take(4).enumerated() { value |= UInt32(byte) << (UInt32(i) * 8) }
        return value
    }

    mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(Int.max) else { throw Malformed(reason: "length \(length) is too large") }
        return try take(Int(length))
    }

    /// Skips a field's value; groups (wire types 3 and 4) are not used by event files and are refused.
    mutating func skip(_ wireType: UInt64) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1: _ = try take(8)
        case 2: _ = try lengthDelimited()
        case 5: _ = try take(4)
        default: throw Malformed(reason: "unsupported wire type \(wireType)")
        }
    }

    /// Throws unless `wireType`, read for `field`, is `expected`.
    static func check(_ wireType: UInt64, _ expected: ProtobufWriter.WireType, field: String) throws {
        guard wireType == expected.rawValue else {
            throw Malformed(reason: "\(field) has wire type \(wireType), expected \(expected.rawValue)")
        }
    }
}

/// Appends TFRecord-framed `Event` records to one TensorBoard event file.
///
/// The file is named `events.out.tfevents.<unix seconds, 10 digits>.<hostname>` (the name
/// tensorflow/core/util/events_writer.cc gives; TensorBoard finds event files by the `tfevents` in the
/// name) unless `fileName` is given, and is opened for appending, so an existing file of that name is
/// extended, not replaced. The first record written is `Event{wall_time, file_version: "brain.Event:2"}`.
///
/// Each record goes to the file with a single `write(2)` as it is added, so readers (TensorBoard polls
/// event files) see every record once the call that added it returns; nothing is held in memory. The
/// writer is not synchronized: use one writer from one thread at a time.
public final class TensorBoardWriter {
    /// The event file's path: `directory` joined with the file name.
    public let path: String
    private var descriptor: Int32
    private let wallTime: () -> Double

    /// Creates `directory` if missing and opens the event file in it.
    /// - Parameters:
    ///   - fileName: the file name to use instead of `events.out.tfevents.<seconds>.<hostname>`.
    ///   - wallTime: seconds since the Unix epoch, stamped on every event (and used for the default file
    ///     name); defaults to `Date().timeIntervalSince1970`.
    public init(directory: String, fileName: String? = nil, wallTime: (() -> Double)? = nil) throws {
        let clock = wallTime ?? { Date().timeIntervalSince1970 }
        self.wallTime = clock
        let now = clock()
        let name = fileName ?? TensorBoardWriter.defaultFileName(wallTime: now, hostname: currentHostname())
        path = (directory as NSString).appendingPathComponent(name)
        descriptor = -1
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TensorBoardError(path: path, reason: "cannot create directory \(directory) (\(error))")
        }
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TensorBoardError(path: path, reason: "cannot open for appending (\(String(cString: strerror(errno))))")
        }
        var event = ProtobufWriter()
        event.double(1, now)
        event.string(3, "brain.Event:2")
        do {
            try writeRecord(event.bytes)
        } catch {
            _ = closeDescriptor(descriptor)
            descriptor = -1
            throw error
        }
    }

    deinit {
        try? close()
    }

    /// `events.out.tfevents.%010d.<hostname>` for `wallTime` truncated to whole seconds.
    static func defaultFileName(wallTime: Double, hostname: String) -> String {
        let seconds = wallTime.isFinite ? Int64(min(max(0, wallTime), 9_999_999_999).rounded(.down)) : 0
        let digits = String(seconds)
        return "events.out.tfevents." + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + "." + hostname
    }

    /// Appends `Event{wall_time, step, summary: Summary{value: [Value{tag, simple_value}]}}`.
    /// `simple_value` is a 32-bit float, so `value` is stored rounded to `Float` (a magnitude beyond
    /// `Float.greatestFiniteMagnitude` becomes infinity; NaN stays NaN).
    public func addScalar(tag: String, value: Double, step: Int) throws {
        var event = ProtobufWriter()
        event.double(1, wallTime())
        event.int64(2, Int64(step))
        event.message(5) { summary in
            summary.message(1) { entry in
                entry.string(1, tag)
                entry.float(2, Float(value))
            }
        }
        try writeRecord(event.bytes)
    }

    /// Every record added so far is already in the file (records are written as they are added); this
    /// only checks that the writer is still open.
    public func flush() throws {
        guard descriptor >= 0 else { throw TensorBoardError(path: path, reason: "writer is closed") }
    }

    /// Closes the file. Closing twice is allowed; adding after closing throws.
    public func close() throws {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        descriptor = -1
        if closeDescriptor(fd) != 0 {
            throw TensorBoardError(path: path, reason: "close failed (\(String(cString: strerror(errno))))")
        }
    }

    /// Frames `data` as one TFRecord and writes it with one `write(2)` (continuing after a short write).
    private func writeRecord(_ data: [UInt8]) throws {
        guard descriptor >= 0 else { throw TensorBoardError(path: path, reason: "writer is closed") }
        var record = [UInt8]()
        record.reserveCapacity(data.count + 16)
        let length = UInt64(data.count)
        for i in 0..<8 { record.append(UInt8(truncatingIfNeeded: length >> (UInt64(i) * 8))) }
        appendUInt32(&record, CRC32C.masked(CRC32C.checksum(record[0..<8])))
        record.append(contentsOf: data)
        appendUInt32(&record, CRC32C.masked(CRC32C.checksum(data)))
        try record.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TensorBoardError(path: path, reason: "write failed (\(String(cString: strerror(errno))))")
                }
                done += n
            }
        }
    }
}

private func appendUInt32(_ bytes: inout [UInt8], _ value: UInt32) {
    for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (UInt32(i) * 8))) }
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
    close(fd)
}

/// `gethostname(2)`, or `localhost` when it fails or is empty.
private func currentHostname() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name.replacingOccurrences(of: "/", with: "_")
}

/// Reads scalars back from a TensorBoard event file.
public enum TensorBoardReader {
    /// One decoded `Event`: its `simple_value` entries, in file order, and its `file_version` if set.
    struct Event {
        var wallTime: Double = 0
        var step: Int = 0
        var fileVersion: String?
        var scalars: [(tag: String, value: Double)] = []
    }

    /// Every `Summary.Value` with a `simple_value` in the file at `path`, in file order, with its event's
    /// step and wall time. Values of other kinds (images, histograms, tensor-based summaries) are skipped.
    /// Both CRCs of every record are verified; a mismatch, a record cut short, or an undecodable `Event`
    /// throws a `TensorBoardError` naming the file and the record's byte offset.
    public static func scalars(path: String) throws -> [(tag: String, step: Int, value: Double, wallTime: Double)] {
        try events(path: path).flatMap { event in
            event.scalars.map { (tag: $0.tag, step: event.step, value: $0.value, wallTime: event.wallTime) }
        }
    }

    /// All events in the file, decoded.
    static func events(path: String) throws -> [Event] {
        try records(path: path).map { offset, data in
            do {
                return try decodeEvent(data)
            } catch let error as ProtobufReader.Malformed {
                throw TensorBoardError(path: path, offset: offset, reason: "malformed Event: \(error.reason)")
            }
        }
    }

    /// The data of every record, with the byte offset at which the record starts, after checking the
    /// TFRecord framing and both masked CRCs.
    static func records(path: String) throws -> [(offset: Int, data: ArraySlice<UInt8>)] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw TensorBoardError(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        var result: [(offset: Int, data: ArraySlice<UInt8>)] = []
        var offset = 0
        while offset < bytes.count {
            let remaining = bytes.count - offset
            guard remaining >= 12 else {
                throw TensorBoardError(path: path, offset: offset,
                                       reason: "truncated record: \(remaining) bytes left, the header needs 12")
            }
            let lengthBytes = bytes[offset..<offset + 8]
            let storedLengthCRC = readUInt32(bytes, offset + 8)
            let lengthCRC = CRC32C.masked(CRC32C.checksum(lengthBytes))
            guard storedLengthCRC == lengthCRC else {
                throw TensorBoardError(path: path, offset: offset, reason: "length CRC mismatch (stored "
                    + hex(storedLengthCRC) + ", computed " + hex(lengthCRC) + ")")
            }
            var length: UInt64 = 0
            for (i, byte) in lengthBytes.enumerated() { length |= UInt64(byte) << (UInt64(i) * 8) }
            guard length <= UInt64(remaining - 12), remaining - 12 - Int(length) >= 4 else {
                throw TensorBoardError(path: path, offset: offset, reason: "truncated record: length \(length) needs "
                    + "\(16 + length) bytes, \(remaining) left")
            }
            let dataStart = offset + 12
            let dataEnd = dataStart + Int(length)
            let data = bytes[dataStart..<dataEnd]
            let storedDataCRC = readUInt32(bytes, dataEnd)
            let dataCRC = CRC32C.masked(CRC32C.checksum(data))
            guard storedDataCRC == dataCRC else {
                throw TensorBoardError(path: path, offset: offset, reason: "data CRC mismatch (stored "
                    + hex(storedDataCRC) + ", computed " + hex(dataCRC) + ")")
            }
            result.append((offset, data))
            offset = dataEnd + 4
        }
        return result
    }

    /// Decodes `Event` fields 1 (wall_time), 2 (step), 3 (file_version) and 5 (summary); other fields are
    /// skipped. Repeated occurrences of the embedded `summary` merge, as protobuf specifies.
    static func decodeEvent(_ data: ArraySlice<UInt8>) throws -> Event {
        var event = Event()
        var reader = ProtobufReader(data)
        while let (field, wireType) = try reader.key() {
            switch field {
            case 1:
                try ProtobufReader.check(wireType, .fixed64, field: "Event.wall_time")
                event.wallTime = Double(bitPattern: try reader.fixed64())
            case 2:
                try ProtobufReader.check(wireType, .varint, field: "Event.step")
                event.step = Int(truncatingIfNeeded: Int64(bitPattern: try reader.varint()))
            case 3:
                try ProtobufReader.check(wireType, .lengthDelimited, field: "Event.file_version")
                event.fileVersion = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case 5:
                try ProtobufReader.check(wireType, .lengthDelimited, field: "Event.summary")
                event.scalars += try decodeSummary(try reader.lengthDelimited())
            default:
                try reader.skip(wireType)
            }
        }
        return event
    }

    /// `Summary.value` (field 1) entries that carry `simple_value` (field 2 of `Summary.Value`).
    private static func decodeSummary(_ data: ArraySlice<UInt8>) throws -> [(tag: String, value: Double)] {
        var scalars: [(tag: String, value: Double)] = []
        var reader = ProtobufReader(data)
        while let (field, wireType) = try reader.key() {
            guard field == 1 else {
                try reader.skip(wireType)
                continue
            }
            try ProtobufReader.check(wireType, .lengthDelimited, field: "Summary.value")
            var value = ProtobufReader(try reader.lengthDelimited())
            var tag = ""
            var simpleValue: Float?
            while let (valueField, valueWireType) = try value.key() {
                switch valueField {
                case 1:
                    try ProtobufReader.check(valueWireType, .lengthDelimited, field: "Summary.Value.tag")
                    tag = String(decoding: try value.lengthDelimited(), as: UTF8.self)
                case 2:
                    try ProtobufReader.check(valueWireType, .fixed32, field: "Summary.Value.simple_value")
                    simpleValue = Float(bitPattern: try value.fixed32())
                default:
                    try value.skip(valueWireType)
                }
            }
            if let simpleValue { scalars.append((tag, Double(simpleValue))) }
        }
        return scalars
    }

    private static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[at + i]) << (UInt32(i) * 8) }
        return value
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
