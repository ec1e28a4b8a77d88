// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Kondate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kondate", targets: ["kondate"]),
        .library(name: "KondateRecipe", targets: ["KondateRecipe"]),
        .library(name: "KondatePlan", targets: ["KondatePlan"]),
        .library(name: "KondateData", targets: ["KondateData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "KondateSupport"),
        .target(name: "KondateRecipe", dependencies: ["KondateSupport", .product(name: "Yams", package: "Yams")]),
        .target(name: "KondatePlan", dependencies: ["KondateRecipe", "KondateSupport"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "KondateMPI", dependencies: ["CMPI", "KondateTensor"]),
        .target(name: "KondateTensor", dependencies: ["COpenBLAS", "KondateSupport"]),
        .target(name: "KondateData", dependencies: ["KondateSupport", "CZlib"]),
        .target(name: "KondateCorpus", dependencies: ["KondateRecipe", "KondatePlan", "KondateData", "KondateSupport", "CZlib"]),
        .target(name: "KondateEval", dependencies: ["KondateSupport"]),
        .target(name: "KondateTune", dependencies: ["KondateRecipe", "KondateData", "KondateSupport"]),
        .target(name: "KondateRuntime", dependencies: ["KondateCorpus", "KondateTensor", "KondateMPI", "KondateTune", "KondateEval", "KondatePlan", "KondateRecipe", "KondateData", "KondateSupport"]),
        .executableTarget(name: "kondate", dependencies: [
            "KondateRecipe", "KondatePlan", "KondateSupport", "KondateData", "KondateCorpus", "KondateTensor", "KondateRuntime", "KondateTune", "KondateEval", "KondateMPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], plugins: ["BuildInfoPlugin"]),
        // The commit a binary is built from, recorded at build time (BuildInfo.swift in the kondate target).
        .executableTarget(name: "kondate-buildinfo"),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), dependencies: ["kondate-buildinfo"]),
        .target(name: "KondateTestSupport", dependencies: ["KondateSupport"], path: "Tests/KondateTestSupport"),
        .testTarget(name: "KondateRecipeTests", dependencies: ["KondateRecipe", "KondatePlan", "KondateSupport", "KondateTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KondatePlanTests", dependencies: ["KondatePlan", "KondateRecipe", "KondateTestSupport"]),
        .testTarget(name: "KondateCLITests", dependencies: ["kondate", "KondateSupport", "KondateTestSupport"]),
        .testTarget(name: "KondateRuntimeTests", dependencies: ["KondateRuntime", "KondatePlan", "KondateRecipe", "KondateSupport", "KondateTestSupport"]),
        .testTarget(name: "KondateCorpusTests", dependencies: ["KondateCorpus", "KondateRecipe", "KondateSupport", "KondateTestSupport"]),
        .testTarget(name: "KondateTuneTests", dependencies: ["KondateTune", "KondateData", "KondateRecipe", "KondateTestSupport"]),
        .testTarget(name: "KondateEvalTests", dependencies: ["KondateEval", "KondateSupport", "KondateTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "KondateTensorTests", dependencies: ["KondateTensor", "KondateTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "KondateDataTests", dependencies: ["KondateData", "KondateSupport", "KondateTestSupport"],
                    exclude: ["Fixtures"]),
    ]
)
