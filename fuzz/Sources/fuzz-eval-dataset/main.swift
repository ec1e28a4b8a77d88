import Foundation
import FuzzDriver
import KondateEval

/// An llm-jp-eval dataset file (JSON with instruction, output_length, metrics, few_shots, samples).
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = try? EvalDataset.parse(String(decoding: bytes(data, size), as: UTF8.self), file: "fuzz.json")
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
