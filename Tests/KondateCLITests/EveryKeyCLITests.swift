import Foundation
import KondateSupport
import KondateTestSupport
import Testing

/// Every key that validates (KeyTable) runs: the rows of a group share one `kondate run … --until` the
/// stage that reads them, which must complete, and the manifest's payload of that stage shows each
/// value applied. Rejected keys are checked by KeyCoverageTests; judge keys need a judge server and run
/// in EvalCLITests.
@Suite("Every accepted key runs", .serialized)
struct EveryKeyCLITests {
    static let order = ["pretrain1", "pretrain2", "pretrain3", "gpt2", "pretrain-warmup", "tune1", "tune2", "tune-warmup", "eval",
                        "release", "release2", "rename", "corpus", "tokenizer-path", "tokenizer-model", "budget"]

    static func until(_ group: String) -> String {
        if group == "rename" { return "release" }
        for prefix in ["pretrain", "tune", "eval", "release"] where group.hasPrefix(prefix) { return prefix }
        return group == "gpt2" ? "pretrain" : "corpus"
    }

    @Test func everyGroupRunsAndShowsItsValues() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let data = URL(fileURLWithPath: base + "/data")
        try KeyTable.writeData(to: data)
        let groups = Set(KeyTable.cases.compactMap(\.group))
        #expect(groups == Set(Self.order), "groups \(groups.subtracting(Self.order)) have no place in the order")
        for group in Self.order {
            let rows = KeyTable.cases.filter { $0.group == group }
            let recipe = try KeyTable.recipeFile(rows[0], in: data)
            var overrides = KeyTable.base
            for row in rows { for o in KeyTable.overrides(row, data: data) where !overrides.contains(o) { overrides.append(o) } }
            // One run directory holds one recipe's runs: a renamed recipe gets its own.
            let out = base + (group == "rename" ? "/renamed" : "/run")
            let started = Date()
            let r = try kondate(["run", recipe, "--out", out, "--until", Self.until(group), "--threads", "2"] + overrides.flatMap { ["--set", $0] })
            print("every key: group \(group) (\(rows.count) keys) in \(Int(Date().timeIntervalSince(started))) s")
            #expect(r.status == 0, "\(group): \(r.stderr.suffix(1500))")
            guard r.status == 0 else { continue }
            let manifest = try JSONParser.parse(String(contentsOfFile: out + "/manifest.json", encoding: .utf8))
            var configs = [String: String]()
            for stage in manifest["stages"]?.arrayValue ?? [] {
                if let id = stage["id"]?.stringValue, let config = stage["config"] { configs[id] = config.rendered(pretty: false) }
            }
            for row in rows {
                switch row.expect {
                case let .applied(stage, fragment):
                    let config = configs[stage] ?? ""
                    #expect(config.contains(fragment), "\(group) \(row.key): the manifest's \(stage) config lacks \(fragment)")
                case .notRead:
                    break
                case .rejected:
                    Issue.record("\(row.key) is rejected but has a run group")
                }
            }
            if group == "release" {
                let card = try String(contentsOfFile: base + "/run/release/README.md", encoding: .utf8)
                #expect(card.contains("A described recipe") && card.contains("license: MIT"), "\(card.prefix(600))")
            }
        }
    }
}
