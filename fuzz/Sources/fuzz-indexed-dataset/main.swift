import Foundation
import FuzzDriver
import KondateCorpus

/// A Megatron .idx/.bin pair: the input's first two bytes say how many of the rest form the .idx; the
/// remainder is the .bin. Every sequence is read once the pair opens.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size >= 2 else { return 0 }
    let split = min(size - 2, Int(data[0]) | Int(data[1]) << 8)
    let prefix = NSTemporaryDirectory() + "kondate-fuzz-idx-\(getpid())"
    FileManager.default.createFile(atPath: prefix + ".idx", contents: Data(bytes: data + 2, count: split))
    FileManager.default.createFile(atPath: prefix + ".bin", contents: Data(bytes: data + 2 + split, count: size - 2 - split))
    guard let dataset = try? IndexedDataset(prefix: prefix) else { return 0 }
    for i in 0..<dataset.count { _ = dataset.tokens(i) }
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
