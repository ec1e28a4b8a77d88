import Foundation
import Testing
@testable import KondateRuntime

/// A fresh empty directory under the system temporary directory.
private func scratchDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("kondate-tb-\(UUID().uuidString)").path
}

/// A clock that starts at `start` and advances by `step` seconds per reading.
private final class SteppingClock {
    private var next: Double
    private let step: Double
    init(start: Double, step: Double) {
        next = start
        self.step = step
    }
    func read() -> Double {
        defer { next += step }
        return next
    }
}

private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

@Suite("TensorBoard CRC32C")
struct TensorBoardCRCTests {
    @Test func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum("123456789".utf8) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    /// RFC 3720 §B.4 test vectors.
    @Test func iscsiVectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    /// Values from tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c.
    @Test func maskMatchesTensorBoard() {
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        #expect(CRC32C.masked(0xE306_9283) == 0xC78A_B0E5)
    }
}

@Suite("TensorBoard event files")
struct TensorBoardEventFileTests {
    @Test func scalarsRoundTripThroughTheReader() throws {
        let directory = scratchDirectory() + "/nested/run"
        let clock = SteppingClock(start: 1_700_000_000.25, step: 1.5)
        let writer = try TensorBoardWriter(directory: directory, fileName: "events.out.tfevents.test", wallTime: clock.read)
        #expect(writer.path == directory + "/events.out.tfevents.test")
        try writer.addScalar(tag: "train/loss", value: 2.3456789, step: 0)
        try writer.addScalar(tag: "train/lr", value: 3e-4, step: 10)
        try writer.addScalar(tag: "train/loss", value: 1.1, step: 20)
        try writer.flush()
        try writer.close()
        try writer.close()

        let scalars = try TensorBoardReader.scalars(path: writer.path)
        #expect(scalars.map(\.tag) == ["train/loss", "train/lr", "train/loss"])
        #expect(scalars.map(\.step) == [0, 10, 20])
        #expect(scalars.map(\.value) == [Double(Float(2.3456789)), Double(Float(3e-4)), Double(Float(1.1))])
        #expect(scalars.map(\.wallTime) == [1_700_000_001.75, 1_700_000_003.25, 1_700_000_004.75])
    }

    @Test func firstRecordIsTheFileVersionEvent() throws {
        let directory = scratchDirectory()
        let writer = try TensorBoardWriter(directory: directory, fileName: "events.out.tfevents.v", wallTime: { 1234.5 })
        try writer.addScalar(tag: "x", value: 1, step: 1)
        try writer.close()

        let events = try TensorBoardReader.events(path: writer.path)
        #expect(events.count == 2)
        #expect(events[0].fileVersion == "brain.Event:2")
        #expect(events[0].wallTime == 1234.5)
        #expect(events[0].scalars.isEmpty)
        #expect(events[1].fileVersion == nil)

        // Event = 09 <f64 wall_time> 1A 0D "brain.Event:2", framed as a TFRecord.
        let data: [UInt8] = [0x09] + littleEndian((1234.5).bitPattern) + [0x1A, 0x0D] + Array("brain.Event:2".utf8)
        let length = littleEndian(UInt64(data.count))
        let expected = length + littleEndian(CRC32C.masked(CRC32C.checksum(length)))
            + data + littleEndian(CRC32C.masked(CRC32C.checksum(data)))
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        #expect(Array(file.prefix(expected.count)) == expected)
    }

    /// Value = 0A <len> tag 15 <f32>; Summary = 0A <len> Value; Event = 09 <f64> 10 <varint step> 2A <len> Summary.
    @Test func scalarEventWireBytes() throws {
        let writer = try TensorBoardWriter(directory: scratchDirectory(), fileName: "e.tfevents", wallTime: { 2.0 })
        try writer.addScalar(tag: "loss", value: 0.5, step: 300)
        try writer.close()
        let records = try TensorBoardReader.records(path: writer.path)
        #expect(records.count == 2)
        let value: [UInt8] = [0x0A, 0x04] + Array("loss".utf8) + [0x15] + littleEndian(Float(0.5).bitPattern)
        let summary: [UInt8] = [0x0A, UInt8(value.count)] + value
        let event: [UInt8] = [0x09] + littleEndian((2.0).bitPattern) + [0x10, 0xAC, 0x02, 0x2A, UInt8(summary.count)] + summary
        #expect(Array(records[1].data) == event)
        #expect(records[1].offset == 16 + records[0].data.count)
    }

    @Test func negativeStepsAndSpecialValuesRoundTrip() throws {
        let writer = try TensorBoardWriter(directory: scratchDirectory(), fileName: "e.tfevents", wallTime: { 0 })
        try writer.addScalar(tag: "a", value: .infinity, step: -1)
        try writer.addScalar(tag: "b", value: 1e300, step: Int(Int64.max))
        try writer.addScalar(tag: "c", value: .nan, step: 7)
        try writer.close()
        let scalars = try TensorBoardReader.scalars(path: writer.path)
        #expect(scalars.map(\.step) == [-1, Int(Int64.max), 7])
        #expect(scalars[0].value == .infinity)
        #expect(scalars[1].value == .infinity)
        #expect(scalars[2].value.isNaN)
    }

    @Test func appendingToAnExistingFileKeepsEarlierRecords() throws {
        let directory = scratchDirectory()
        let first = try TensorBoardWriter(directory: directory, fileName: "e.tfevents", wallTime: { 1 })
        try first.addScalar(tag: "a", value: 1, step: 1)
        try first.close()
        let second = try TensorBoardWriter(directory: directory, fileName: "e.tfevents", wallTime: { 2 })
        try second.addScalar(tag: "a", value: 2, step: 2)
        try second.close()
        let scalars = try TensorBoardReader.scalars(path: second.path)
        #expect(scalars.map(\.step) == [1, 2])
        #expect(try TensorBoardReader.events(path: second.path).filter { $0.fileVersion != nil }.count == 2)
    }

    @Test func defaultFileNameIsSecondsAndHostname() throws {
        #expect(TensorBoardWriter.defaultFileName(wallTime: 1234.9, hostname: "node1")
            == "events.out.tfevents.0000001234.node1")
        #expect(TensorBoardWriter.defaultFileName(wallTime: 1_700_000_000, hostname: "h")
            == "events.out.tfevents.1700000000.h")

        let directory = scratchDirectory()
        let writer = try TensorBoardWriter(directory: directory, wallTime: { 1_700_000_123.9 })
        try writer.close()
        let name = (writer.path as NSString).lastPathComponent
        #expect(name.hasPrefix("events.out.tfevents.1700000123."))
        #expect(name.count > "events.out.tfevents.1700000123.".count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [name])
    }

    @Test func addingAfterCloseThrows() throws {
        let writer = try TensorBoardWriter(directory: scratchDirectory(), fileName: "e.tfevents")
        try writer.close()
        #expect(throws: TensorBoardError.self) { try writer.addScalar(tag: "a", value: 1, step: 1) }
        #expect(throws: TensorBoardError.self) { try writer.flush() }
    }
}

@Suite("TensorBoard reader errors")
struct TensorBoardReaderErrorTests {
    /// A file with the version event (40 bytes: 16 framing + 24 data) and two scalars.
    private func sampleFile() throws -> (path: String, bytes: [UInt8]) {
        let writer = try TensorBoardWriter(directory: scratchDirectory(), fileName: "e.tfevents", wallTime: { 5 })
        try writer.addScalar(tag: "loss", value: 1, step: 1)
        try writer.addScalar(tag: "loss", value: 2, step: 2)
        try writer.close()
        return (writer.path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path))))
    }

    private func rewrite(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func readerError(_ path: String) -> TensorBoardError? {
        do {
            _ = try TensorBoardReader.scalars(path: path)
            return nil
        } catch {
            return error as? TensorBoardError
        }
    }

    @Test func flippedDataByteNamesTheRecordOffset() throws {
        let sample = try sampleFile()
        let path = sample.path
        var bytes = sample.bytes
        bytes[40 + 12 + 3] ^= 0x01
        try rewrite(path, bytes)
        let error = try #require(readerError(path))
        #expect(error.path == path)
        #expect(error.offset == 40)
        #expect(error.reason.contains("data CRC mismatch"))
        #expect(error.description.contains(path))
        #expect(error.description.contains("byte 40"))
    }

    @Test func flippedLengthByteNamesTheRecordOffset() throws {
        let sample = try sampleFile()
        let path = sample.path
        var bytes = sample.bytes
        bytes[0] ^= 0x80
        try rewrite(path, bytes)
        let error = try #require(readerError(path))
        #expect(error.offset == 0)
        #expect(error.reason.contains("length CRC mismatch"))
    }

    @Test func flippedChecksumByteIsDetected() throws {
        let sample = try sampleFile()
        let path = sample.path
        var bytes = sample.bytes
        bytes[bytes.count - 1] ^= 0x10
        try rewrite(path, bytes)
        let recordLength = (bytes.count - 40) / 2
        let error = try #require(readerError(path))
        #expect(error.offset == 40 + recordLength)
        #expect(error.reason.contains("data CRC mismatch"))
    }

    @Test func truncatedFileThrows() throws {
        let (path, bytes) = try sampleFile()
        let recordLength = (bytes.count - 40) / 2
        for cut in [1, 4, 10, recordLength - 6] {
            try rewrite(path, Array(bytes.dropLast(cut)))
            let error = try #require(readerError(path), "cut \(cut)")
            #expect(error.offset == 40 + recordLength, "cut \(cut)")
            #expect(error.reason.contains("truncated"), "cut \(cut)")
        }
        try rewrite(path, Array(bytes.dropLast(recordLength)))
        #expect(try TensorBoardReader.scalars(path: path).map(\.step) == [1])
    }

    @Test func missingFileThrows() throws {
        let path = scratchDirectory() + "/absent.tfevents"
        let error = try #require(readerError(path))
        #expect(error.path == path)
        #expect(error.offset == nil)
    }
}

/// With KONDATE_TB_OUT set, writes an event file with the usual name into that directory, for checking
/// with scripts/check_tensorboard.py (TensorBoard's own loader).
@Suite("TensorBoard export")
struct TensorBoardExportTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["KONDATE_TB_OUT"] != nil))
    func writeSampleRun() throws {
        let directory = try #require(ProcessInfo.processInfo.environment["KONDATE_TB_OUT"])
        let writer = try TensorBoardWriter(directory: directory)
        for step in 0..<50 {
            try writer.addScalar(tag: "train/loss", value: 4.0 * exp(-Double(step) / 20) + 1.5, step: step * 10)
            if step % 5 == 0 { try writer.addScalar(tag: "train/lr", value: 3e-4 * Double(50 - step) / 50, step: step * 10) }
        }
        try writer.close()
        #expect(try TensorBoardReader.scalars(path: writer.path).count == 60)
    }
}
