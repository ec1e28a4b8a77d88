import Foundation
import KondatePlan
@testable import KondateRecipe

/// The repository root (tests read recipes/, examples/ and docs/ from it).
let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}()

let fixturesDirectory = repositoryRoot.appendingPathComponent("Tests/KondateRecipeTests/Fixtures")

/// Runs everything `kondate validate` runs, in process.
func validate(_ path: String, overrides: [String] = [], paths: PathPolicy = .summary) -> (LoadedRecipe, DiagnosticSet) {
    let loaded = RecipeFrontend.load(path: path, overrides: overrides.map(Override.init), paths: paths)
    var diagnostics = loaded.diagnostics
    if let recipe = loaded.recipe { diagnostics.append(contentsOf: Plan(recipe: recipe).diagnostics) }
    return (loaded, diagnostics)
}

/// Writes files into a fresh temporary directory and returns it.
func temporaryRecipes(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
    return dir
}

/// A valid minimal recipe body that tests extend or patch.
let minimalRecipe = """
name: minimal
model:
  arch: llama
  hidden: 64
  layers: 2
  heads: 4
  seq_len: 128
  vocab_size: 256

"""
