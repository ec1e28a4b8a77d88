import Foundation
import FuzzDriver
import KondatePlan
import KondateRecipe

/// The recipe front end and the plan on arbitrary bytes: YAML, composition, interpolation, schema and
/// semantic checks. Errors are diagnostics; a crash, a leak or a hang is a bug.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = NSTemporaryDirectory() + "kondate-fuzz-recipe-\(getpid()).yaml"
    FileManager.default.createFile(atPath: path, contents: bytes(data, size))
    _ = RecipeCompiler.compile(path: path)
    return 0
}

/// libFuzzer's runtime needs this symbol even though `runFuzzer` passes `fuzz` to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzz(data, size) }

runFuzzer(fuzz)
