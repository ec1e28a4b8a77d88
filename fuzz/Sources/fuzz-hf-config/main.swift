import Foundation
import FuzzDriver
import KondateModel
import KondateSupport

/// A Hugging Face config.json: JSON, then the model configuration it describes (never allocated here).
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let json = try? JSONParser.parse(String(decoding: bytes(data, size), as: UTF8.self)) else { return 0 }
    if let config = try? HFModel.config(from: json, file: "config.json") { _ = ParameterLayout(config).count }
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
