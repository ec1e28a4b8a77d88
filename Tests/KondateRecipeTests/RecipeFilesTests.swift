import Foundation
import Testing
@testable import KondateRecipe

/// The shipped recipes are part of the product: each validates clean and matches the JSON Schema.
@Suite("Shipped recipes and generated documents")
struct RecipeFilesTests {
    static func shippedRecipes() -> [String] {
        var out: [String] = []
        for dir in ["recipes", "examples"] {
            let base = repositoryRoot.appendingPathComponent(dir)
            guard let walker = FileManager.default.enumerator(atPath: base.path) else { continue }
            for case let file as String in walker where file.hasSuffix(".yaml") { out.append("\(dir)/\(file)") }
        }
        return out.sorted()
    }

    @Test func theRecipesAreThere() {
        let names = Self.shippedRecipes()
        for required in ["recipes/llm-jp-13b-v1.0.yaml", "recipes/llm-jp-13b-v2.0.yaml", "recipes/llm-jp-3-1.8b.yaml",
                         "recipes/llm-jp-3-3.7b.yaml", "recipes/llm-jp-3-13b.yaml", "recipes/llm-jp-3-172b.yaml",
                         "examples/tiny/tiny-llama.yaml"] {
            #expect(names.contains(required), "\(required) is missing")
        }
    }

    @Test("validates with no errors and no warnings", arguments: shippedRecipes())
    func validatesClean(_ file: String) {
        let (loaded, diagnostics) = validate(repositoryRoot.appendingPathComponent(file).path)
        #expect(loaded.recipe != nil)
        let problems = diagnostics.items.filter { $0.severity != .note }
        #expect(problems.isEmpty, "\(file): \(problems.map { "\($0.location?.description ?? "-") \($0.message)" })")
    }

    nonisolated(unsafe) static let schema: [String: Any] = {
        let text = JSONSchemaExport.schema().rendered()
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }()

    @Test("conforms to the exported JSON Schema as written (before composition)", arguments: shippedRecipes())
    func conformsToSchema(_ file: String) throws {
        var d = DiagnosticSet()
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent(file))
        let node = try #require(YAMLLoader().load(data: data, file: file, into: &d))
        let errors = MiniJSONSchema.validate(MiniJSONSchema.json(from: node), against: Self.schema, root: Self.schema)
        #expect(errors.isEmpty, "\(file): \(errors.prefix(5))")
    }

    @Test func theSchemaRejectsWhatTheValidatorRejects() {
        let root = Self.schema
        func check(_ yaml: String) -> [String] {
            var d = DiagnosticSet()
            guard let node = YAMLLoader().load(data: Data(yaml.utf8), file: "t.yaml", into: &d) else { return ["unparsed"] }
            return MiniJSONSchema.validate(MiniJSONSchema.json(from: node), against: root, root: root)
        }
        #expect(!check("model: {hiden: 4}").isEmpty)
        #expect(!check("model: {arch: lama}").isEmpty)
        #expect(!check("parallel: {recompute: sometimes}").isEmpty)
        #expect(!check("pretrain: {tokens: 260X}").isEmpty)
        #expect(!check("corpus: {sources: {web: {filters: [{nope: {}}]}}}").isEmpty)
        #expect(check("pretrain: {tokens: 260B, steps: 2_000}").isEmpty)
        #expect(check("model: {hidden: \"${other.hidden}\"}").isEmpty)
        #expect(check("corpus: {sources: {web: {filters: [dedup_exact, {doc_length: {min_chars: 5}}]}}}").isEmpty)
        #expect(check("corpus: {sources: {web: {paths+: [x.jsonl]}}}").isEmpty)
    }

    @Test func generatedDocumentsAreUpToDate() throws {
        let docs = repositoryRoot.appendingPathComponent("docs")
        let reference = try String(contentsOf: docs.appendingPathComponent("reference.md"), encoding: .utf8)
        #expect(reference == ReferenceDoc.markdown(), "docs/reference.md is stale: run `kondate docs reference > docs/reference.md`")
        let catalogue = try String(contentsOf: docs.appendingPathComponent("diagnostics.md"), encoding: .utf8)
        #expect(catalogue == ReferenceDoc.diagnosticsMarkdown(), "docs/diagnostics.md is stale: run `kondate docs diagnostics > docs/diagnostics.md`")
        let schema = try String(contentsOf: docs.appendingPathComponent("kondate.schema.json"), encoding: .utf8)
        #expect(schema == JSONSchemaExport.schema().rendered() + "\n", "docs/kondate.schema.json is stale: run `kondate schema > docs/kondate.schema.json`")
    }

    @Test func everySchemaKeyIsDocumented() {
        let reference = ReferenceDoc.markdown()
        func walk(_ o: ObjectSchema) {
            for f in o.fields {
                #expect(reference.contains("`\(f.name)`"), "\(o.name).\(f.name) is not in the reference")
                #expect(!f.doc.isEmpty, "\(o.name).\(f.name) has no description")
                if case let .object(sub) = f.type { walk(sub) }
            }
        }
        walk(RecipeSchema.recipe)
    }
}
