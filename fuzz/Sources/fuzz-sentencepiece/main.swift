import Foundation
import FuzzDriver
import KondateTokenizers

/// SentencePiece `.model` loading (protobuf), then encoding and decoding a fixed text.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let model = try? SentencePieceModel(data: bytes(data, size), file: "fuzz.model"),
          let tokenizer = try? SentencePieceTokenizer(model: model, file: "fuzz.model") else { return 0 }
    let ids = tokenizer.encode("Kondate 献立 — hello, world! 123\n end")
    _ = tokenizer.decode(ids)
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
