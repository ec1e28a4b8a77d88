import Foundation
import FuzzDriver
import KondateTokenizers

/// tokenizer.json loading, then encoding and decoding a fixed text with whatever loaded.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let tokenizer = try? HFTokenizer(data: bytes(data, size), file: "fuzz.json") else { return 0 }
    let ids = tokenizer.encode("Kondate 献立 — hello, world! 123 \u{1F600}\n\tend")
    _ = tokenizer.decode(ids)
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
