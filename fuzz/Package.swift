// swift-tools-version:6.0
// libFuzzer targets for Kondate's readers of untrusted input (docs/security.md). Built and run by
// scripts/fuzz.sh with `-sanitize=fuzzer,address`; not part of the main package's build or tests.
import PackageDescription

let targets: [(String, [Target.Dependency])] = [
    ("fuzz-recipe", [.product(name: "KondatePlan", package: "main"), .product(name: "KondateRecipe", package: "main")]),
    ("fuzz-tokenizer-json", [.product(name: "KondateTokenizers", package: "main")]),
    ("fuzz-sentencepiece", [.product(name: "KondateTokenizers", package: "main")]),
    ("fuzz-safetensors", [.product(name: "KondateModel", package: "main")]),
    ("fuzz-hf-config", [.product(name: "KondateModel", package: "main"), .product(name: "KondateSupport", package: "main")]),
    ("fuzz-indexed-dataset", [.product(name: "KondateCorpus", package: "main")]),
    ("fuzz-eval-dataset", [.product(name: "KondateEval", package: "main")]),
]

let package = Package(
    name: "KondateFuzz",
    dependencies: [.package(name: "main", path: "..")],
    targets: [.target(name: "FuzzDriver", path: "Sources/FuzzDriver")] + targets.map { name, dependencies in
        // libFuzzer's runtime is linked into the fuzz targets only (they call its driver from their own
        // main); scripts/fuzz.sh instruments every module (coverage and AddressSanitizer), including
        // the build tool of the main package's plugin, which keeps its own main.
        .executableTarget(name: name, dependencies: dependencies + ["FuzzDriver"], path: "Sources/\(name)",
                          swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
                          linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])])
    }
)
