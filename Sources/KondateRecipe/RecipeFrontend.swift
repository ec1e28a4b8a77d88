/// The whole front end: compose, interpolate, check against the schema, derive defaults, run the
/// semantic checks, look at input paths, and build the typed recipe when nothing failed.
public struct LoadedRecipe: Sendable {
    /// The resolved tree (present when composition and the schema check produced one).
    public var tree: RNode?
    /// The typed recipe, present when there are no errors.
    public var recipe: Recipe?
    public var diagnostics: DiagnosticSet
    public var sources: SourceStore
    /// Files read, the root first.
    public var files: [String]
}

public enum RecipeFrontend {
    public static func load(path: String, overrides: [Override] = [], paths: PathPolicy = .summary) -> LoadedRecipe {
        var composer = Composer()
        let composed = composer.compose(path: path, overrides: overrides)
        var diagnostics = composer.diagnostics
        var result = LoadedRecipe(tree: nil, recipe: nil, diagnostics: diagnostics, sources: composer.sources, files: composer.files)
        guard let composed else { return result }

        var interpolator = Interpolator(root: composed)
        let interpolated = interpolator.resolve()
        diagnostics.append(contentsOf: interpolator.diagnostics)

        var checker = SchemaChecker()
        let checked = checker.check(interpolated, against: RecipeSchema.root, keyLocation: interpolated.location)
        diagnostics.append(contentsOf: checker.diagnostics)
        // Every file of the chain on its own: a typo or a wrong type in a parent is an error at the parent's
        // line even when a later file (or --set) overrides or unsets the value.
        let reported = Set(diagnostics.items.compactMap(\.location))
        for document in composer.documents {
            var own = SchemaChecker(partial: true)
            _ = own.check(document.node, against: RecipeSchema.root, keyLocation: document.node.location)
            for d in own.diagnostics.items where d.location.map({ !reported.contains($0) }) ?? false { diagnostics.add(d) }
        }
        guard var tree = checked else {
            result.diagnostics = diagnostics
            return result
        }
        DerivedDefaults.apply(to: &tree, diagnostics: &diagnostics)
        diagnostics.append(contentsOf: SemanticChecks.run(on: tree, invalid: checker.invalidPaths))
        PathCheck.check(tree, policy: paths, into: &diagnostics)
        result.tree = tree
        if !diagnostics.hasErrors {
            do {
                result.recipe = try Recipe(tree: tree, file: Composer.normalize(path))
                result.recipe?.overrides = overrides.map(\.text)
            } catch {
                // Every check passed yet the typed recipe cannot be built: a Kondate bug, reported as one.
                diagnostics.error(.internalError, "internal error: \(error.description); the recipe passed every check, so this is a bug in Kondate: please report it with the recipe",
                                  at: tree.diagnosticLocation(error.path))
            }
        }
        result.diagnostics = diagnostics
        return result
    }
}
