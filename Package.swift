// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Kondate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kondate", targets: ["kondate"]),
        .library(name: "KondateRecipe", targets: ["KondateRecipe"]),
        .library(name: "KondatePlan", targets: ["KondatePlan"]),
        .library(name: "KondateTokenizers", targets: ["KondateTokenizers"]),
        // For the fuzz targets in fuzz/ (scripts/fuzz.sh), a package of their own.
        .library(name: "KondateCorpus", targets: ["KondateCorpus"]),
        .library(name: "KondateModel", targets: ["KondateModel"]),
        .library(name: "KondateEval", targets: ["KondateEval"]),
        .library(name: "KondateSupport", targets: ["KondateSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Recipe language and planning (no numerics): recipe → typed Recipe → Plan with its execution graph.
        .target(name: "KondateSupport"),
        .target(name: "KondateRecipe", dependencies: ["KondateSupport", .product(name: "Yams", package: "Yams")]),
        .target(name: "KondatePlan", dependencies: ["KondateRecipe", "KondateSupport"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // Data: tokenizers (Hugging Face tokenizer.json, SentencePiece), corpus preparation and mixtures.
        .target(name: "KondateTokenizers", dependencies: ["KondateSupport", "CZlib"]),
        .target(name: "KondateCorpus", dependencies: ["KondateRecipe", "KondatePlan", "KondateTokenizers", "KondateSupport", "CZlib"]),
        // Compute: CPU kernels; the collectives seam and its MPI transport; the model; the trainer,
        // optimizer and checkpoints.
        .target(name: "KondateKernels", dependencies: ["COpenBLAS", "CDNNL", "KondateSupport"]),
        .target(name: "KondateCollectives"),
        .target(name: "KondateMPI", dependencies: ["CMPI", "KondateCollectives", "KondateSupport"]),
        .target(name: "KondateModel", dependencies: ["KondateKernels", "KondateCollectives", "KondateSupport"]),
        .target(name: "KondateTraining", dependencies: ["KondateModel", "KondateKernels", "KondateCollectives", "KondateSupport"]),
        // Tuning data and evaluation.
        .target(name: "KondateEval", dependencies: ["KondateSupport"]),
        .target(name: "KondateTune", dependencies: ["KondateRecipe", "KondateTokenizers", "KondateSupport"]),
        // Reading finished runs: the HTML report and run diff.
        .target(name: "KondateReport", dependencies: ["KondateRecipe", "KondateModel", "KondateSupport"]),
        // The runtime: stage runners, the store, manifests, tracking, distributed runs, verification.
        .target(name: "KondateRuntime", dependencies: [
            "KondateCorpus", "KondateKernels", "KondateCollectives", "KondateModel", "KondateTraining", "KondateMPI", "KondateTune",
            "KondateEval", "KondateReport", "KondatePlan", "KondateRecipe", "KondateTokenizers", "KondateSupport",
        ]),
        // Benchmarks that print figures (`kondate bench`).
        .target(name: "KondateBench", dependencies: [
            "KondateKernels", "KondateCollectives", "KondateModel", "KondateTraining", "KondateMPI", "KondatePlan", "KondateRecipe",
            "KondateTokenizers", "KondateCorpus", "KondateSupport",
        ]),
        .executableTarget(name: "kondate", dependencies: [
            "KondateRecipe", "KondatePlan", "KondateSupport", "KondateTokenizers", "KondateCorpus", "KondateKernels", "KondateCollectives",
            "KondateModel", "KondateTraining", "KondateRuntime", "KondateReport", "KondateBench", "KondateTune", "KondateEval", "KondateMPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], plugins: ["BuildInfoPlugin"]),
        // The commit a binary is built from, recorded at build time (BuildInfo.swift in the kondate target).
        .executableTarget(name: "kondate-buildinfo"),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), dependencies: ["kondate-buildinfo"]),
        .target(name: "KondateTestSupport", dependencies: ["KondateSupport"], path: "Tests/KondateTestSupport"),
        .testTarget(name: "KondateRecipeTests", dependencies: ["KondateRecipe", "KondatePlan", "KondateSupport", "KondateTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KondatePlanTests", dependencies: ["KondatePlan", "KondateRecipe", "KondateTestSupport"]),
        .testTarget(name: "KondateCLITests", dependencies: ["kondate", "KondateRuntime", "KondateSupport", "KondateTestSupport", "CZlib"]),
        .testTarget(name: "KondateRuntimeTests", dependencies: ["KondateRuntime", "KondatePlan", "KondateRecipe", "KondateModel", "KondateKernels",
                                                       "KondateSupport", "KondateTestSupport"]),
        .testTarget(name: "KondateBenchTests", dependencies: ["KondateBench", "KondateModel", "KondateSupport"]),
        .testTarget(name: "KondateCorpusTests", dependencies: ["KondateCorpus", "KondateRecipe", "KondateSupport", "KondateTestSupport"]),
        .testTarget(name: "KondateTuneTests", dependencies: ["KondateTune", "KondateTokenizers", "KondateRecipe", "KondateTestSupport"]),
        .testTarget(name: "KondateEvalTests", dependencies: ["KondateEval", "KondateSupport", "KondateTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "KondateKernelsTests", dependencies: ["KondateKernels", "KondateTestSupport"]),
        .testTarget(name: "KondateModelTests", dependencies: ["KondateModel", "KondateTraining", "KondateKernels", "KondateCollectives",
                                                              "KondateTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "KondateTokenizersTests", dependencies: ["KondateTokenizers", "KondateSupport", "KondateTestSupport"],
                    exclude: ["Fixtures"]),
    ]
)
