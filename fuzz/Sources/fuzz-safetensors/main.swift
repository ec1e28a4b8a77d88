import Foundation
import FuzzDriver
import KondateModel

/// A safetensors file: header and tensor entries, then every tensor read as floats.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let file = try? SafetensorsFile(data: bytes(data, size), file: "fuzz.safetensors") else { return 0 }
    for entry in file.entries { _ = try? file.floats(entry.name) }
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
