import Foundation
@testable import KondateModel
import KondateSupport
import KondateTestSupport
import Testing

@Suite("safetensors")
struct SafetensorsTests {
    /// A file from a header string and a data buffer.
    func file(_ header: String, _ buffer: [UInt8], length: UInt64? = nil) -> Data {
        var d = Data()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: h)
        d.append(contentsOf: buffer)
        return d
    }

    @Test func writeThenReadBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("model.safetensors").path
        try SafetensorsFile.write([("b.weight", [2, 3], [1, 2, 3, 4, 5, 6]), ("a.bias", [2], [-1, 0.5]), ("scalar", [], [7])],
                                  metadata: ["format": "pt"], to: path)
        let st = try SafetensorsFile(path: path)
        #expect(st.entries.map(\.name) == ["a.bias", "b.weight", "scalar"])
        #expect(try st.floats("b.weight") == [1, 2, 3, 4, 5, 6])
        #expect(try st.floats("scalar") == [7])
        #expect(st.metadata == ["format": "pt"])
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect((8 + n) % 8 == 0)   // data starts 8-byte aligned, as the reference writer pads
    }

    @Test func readsAFileWrittenByTheReferencePackage() throws {
        // scripts/make_safetensors_fixture.py
        let st = try SafetensorsFile(path: repositoryRoot.appendingPathComponent("Tests/KondateModelTests/Fixtures/reference.safetensors").path)
        #expect(try st.floats("w") == [0, 1, 2, 3, 4, 5])
        #expect(st.entry("w")?.shape == [2, 3])
        #expect(try st.floats("b") == [1.5])
        #expect(try st.floats("h") == [0.5, -2])
        #expect(st.metadata["format"] == "pt")
    }

    @Test func halfPrecisionConversions() throws {
        // BF16 1.0 = 0x3F80, -2.5 = 0xC020; F16 1.0 = 0x3C00, 65504 = 0x7BFF, smallest subnormal = 0x0001.
        let st = try SafetensorsFile(data: file(#"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"h":{"dtype":"F16","shape":[3],"data_offsets":[4,10]}}"#,
                                                 [0x80, 0x3F, 0x20, 0xC0, 0x00, 0x3C, 0xFF, 0x7B, 0x01, 0x00]), file: "t")
        #expect(try st.floats("b") == [1, -2.5])
        #expect(try st.floats("h") == [1, 65504, Float(bitPattern: 0x3380_0000)])
    }

    @Test func maliciousOrBrokenHeadersAreRefused() {
        let ok = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let cases: [(String, Data)] = [
            ("short", Data([1, 2, 3])),
            ("huge header length", file(ok, [0, 0, 0, 0], length: 1 << 40)),
            ("header past the end", file(ok, [0, 0, 0, 0], length: 500)),
            ("not JSON", file("{nope", [])),
            ("not an object", file("[1,2]", [])),
            ("unknown dtype", file(#"{"x":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])),
            ("offsets out of bounds", file(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,400]}}"#, [0, 0, 0, 0])),
            ("wrong size", file(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])),
            ("overlap", file(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])),
            ("hole", file(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, [0, 0, 0, 0, 0, 0, 0, 0])),
            ("trailing bytes", file(ok, [0, 0, 0, 0, 9])),
            ("duplicate name", file(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, [0, 0, 0, 0, 0, 0, 0, 0])),
            ("negative shape", file(#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])),
            ("overflowing shape", file(#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])),
            ("metadata not strings", file(#"{"__metadata__":{"a":1}}"#, [])),
        ]
        for (name, data) in cases {
            #expect(throws: FileError.self, "\(name) was accepted") { try SafetensorsFile(data: data, file: name) }
        }
        #expect((try? SafetensorsFile(data: file(ok, [0, 0, 128, 63]), file: "ok").floats("x")) == [1])
    }
}
