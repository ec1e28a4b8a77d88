import KondateRecipe
import KondateSupport

/// A recipe compiled for an engine: the front end's resolved tree and typed recipe, the plan (execution
/// graph and estimates), and every diagnostic of all three plus the engine's refusals.
///
/// Every command that reads a recipe compiles it here, so `kondate validate --engine E` and the command
/// that executes on `E` (`kondate run` for `kondate`, `kondate launch --engine megatron`) accept and
/// refuse exactly the same recipes, with the same messages.
public struct Compilation: Sendable {
    /// The front end's result: resolved tree, files read, sources for rendering.
    public var loaded: LoadedRecipe
    /// The typed recipe, when the front end found no error.
    public var recipe: Recipe?
    /// The plan, when there is a typed recipe (present even when the plan or the engine reports errors,
    /// so `plan` can show what is wrong).
    public var plan: Plan?
    /// The engine the recipe was checked for.
    public var engine: Engine
    /// Front end, plan and engine diagnostics.
    public var diagnostics: DiagnosticSet

    /// The recipe, only when nothing reported an error: what an executing command may run.
    public var executable: Recipe? { diagnostics.hasErrors ? nil : recipe }
}

public enum RecipeCompiler {
    /// Loads, checks, types and plans `path` with `overrides`, then checks it against `engine` (nil: the
    /// recipe's default engine, `Engine.default(for:)`).
    public static func compile(path: String, overrides: [Override] = [], paths: PathPolicy = .summary, engine: Engine? = nil,
                               mfu: Double? = nil) -> Compilation {
        let loaded = RecipeFrontend.load(path: path, overrides: overrides, paths: paths)
        var diagnostics = loaded.diagnostics
        guard let recipe = loaded.recipe else {
            return Compilation(loaded: loaded, recipe: nil, plan: nil, engine: engine ?? .kondate, diagnostics: diagnostics)
        }
        let plan = Plan(recipe: recipe, mfu: mfu)
        diagnostics.append(contentsOf: plan.diagnostics)
        let target = engine ?? Engine.default(for: recipe)
        diagnostics.append(contentsOf: EngineSupport.check(recipe, engine: target))
        return Compilation(loaded: loaded, recipe: recipe, plan: plan, engine: target, diagnostics: diagnostics)
    }
}
