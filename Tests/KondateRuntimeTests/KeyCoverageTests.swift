import Foundation
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport
import KondateTestSupport
import Testing

/// Honour or reject, key by key: every key of the recipe language, given a non-default value on the
/// tiny example, is either refused by validation at its `--set` with what to do instead, or reaches the
/// payload of the stage that reads it (what its runner reads and its key hashes), or is read by no stage
/// (plans, launchers and the model card read it): then no payload but the release's moves.
/// `EveryKeyCLITests` runs the accepted rows.
@Suite("Every recipe key is honoured or rejected")
struct KeyCoverageTests {
    static let data = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-keytable-\(getpid())")

    static func compile(_ c: KeyCase?) throws -> Compilation {
        try KeyTable.writeData(to: data)
        let file = try c.map { try KeyTable.recipeFile($0, in: data) } ?? repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path
        let overrides = KeyTable.base + (c.map { KeyTable.overrides($0, data: data) } ?? [])
        return RecipeCompiler.compile(path: file, overrides: overrides.map(Override.init), engine: .kondate)
    }

    static func payloads(_ c: Compilation) -> [String: String] {
        Dictionary(uniqueKeysWithValues: (c.plan?.graph.stages ?? []).map { ($0.id, $0.payload.json.canonical.rendered(pretty: false)) })
    }

    @Test func everySchemaKeyHasARow() {
        let rows = Set(KeyTable.cases.map(\.key))
        for key in EngineSupport.keyPaths() where !KeyTable.sections.contains(key) && KeyTable.single[key] == nil {
            #expect(rows.contains(key), "no row for \(key) in KeyTable")
        }
        for key in rows { #expect(EngineSupport.keyPaths().contains(key), "\(key) is not a schema key") }
    }

    @Test func eachRowIsRejectedAtItsKeyOrApplied() throws {
        let base = try Self.compile(nil)
        try #require(!base.diagnostics.hasErrors, "\(base.diagnostics.errors.map(\.message))")
        let basePayloads = Self.payloads(base)
        for c in KeyTable.cases {
            let compiled = try Self.compile(c)
            let errors = compiled.diagnostics.errors
            switch c.expect {
            case let .rejected(fix):
                let e = try #require(errors.first, "\(c.key): validated, expected a refusal")
                let name = String(c.key.split(separator: ".").last ?? "")
                let overrides = KeyTable.base + KeyTable.overrides(c, data: Self.data)
                #expect(e.location?.file == "--set" && overrides[(e.location?.line ?? 1) - 1].contains(name),
                        "\(c.key): refused at \(String(describing: e.location)), not at its --set")
                #expect(e.message.contains(fix), "\(c.key): \(e.message)")
            case let .applied(stage, fragment):
                #expect(errors.isEmpty, "\(c.key): \(errors.map(\.message))")
                let payload = try #require(Self.payloads(compiled)[stage], "\(c.key): no stage \(stage)")
                #expect(payload.contains(fragment), "\(c.key): \(stage)'s payload lacks \(fragment): \(payload)")
                #expect(payload != basePayloads[stage], "\(c.key): \(stage)'s payload did not change")
            case .notRead:
                #expect(errors.isEmpty, "\(c.key): \(errors.map(\.message))")
                let payloads = Self.payloads(compiled)
                for (id, payload) in payloads where id != "release" {
                    #expect(payload == basePayloads[id], "\(c.key): read by \(id)")
                }
            }
        }
    }
}
