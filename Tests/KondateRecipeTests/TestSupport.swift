import Foundation
import KondatePlan
@_exported import KondateTestSupport
@testable import KondateRecipe


let fixturesDirectory = repositoryRoot.appendingPathComponent("Tests/KondateRecipeTests/Fixtures")

/// Runs everything `kondate validate` runs, in process.
func validate(_ path: String, overrides: [String] = [], paths: PathPolicy = .summary) -> (LoadedRecipe, DiagnosticSet) {
    // What `kondate validate` reports: front end, plan and the recipe's default engine.
    let compilation = RecipeCompiler.compile(path: path, overrides: overrides.map(Override.init), paths: paths)
    return (compilation.loaded, compilation.diagnostics)
}

/// A valid minimal recipe body that tests extend or patch.
let minimalRecipe = "name: minimal\n" + minimalModelYAML
