import Foundation
import Testing
@testable import KondateRecipe

/// Every file under Fixtures/bad is a broken recipe that states the diagnostics it must produce:
///
///     # expect: 12:5 error: unknown key 'hiden'          (line:col in this file)
///     # expect: base.yaml:3:7 error: …                    (in another file of the fixture)
///     # expect: --set:1:14 error: …                       (in the N-th --set override)
///     # expect: - error: …                                (no location)
///     # set: model.layers=x                               (an override to apply)
///
/// A fixture is a `.yaml` file, or a directory whose `main.yaml` is the recipe (for extends chains).
/// Files that cannot carry comments (binary, UTF-16) keep their expectations in `NAME.expect`.
/// Every error produced must be expected; warnings are checked only when expected.
struct FixtureExpectation: CustomStringConvertible {
    var file: String?
    var line: Int?
    var column: Int?
    var severity: Severity
    var fragment: String

    var description: String {
        let loc = line.map { "\(file.map { $0 + ":" } ?? "")\($0):\(column ?? 0)" } ?? "-"
        return "\(loc) \(severity.rawValue): \(fragment)"
    }

    func matches(_ d: Diagnostic, mainFile: String) -> Bool {
        guard d.severity == severity, d.message.contains(fragment) else { return false }
        guard let line else { return d.location == nil }
        guard let loc = d.location else { return false }
        let expectedFile = file ?? mainFile
        let sameFile = expectedFile == "--set" ? loc.file == "--set" : loc.file.hasSuffix("/" + expectedFile) || loc.file == expectedFile
        return sameFile && loc.line == line && loc.column == column
    }
}

struct Fixture: CustomStringConvertible {
    var name: String
    var recipePath: String
    var expectations: [FixtureExpectation]
    var overrides: [String]
    var description: String { name }

    static func all() -> [Fixture] {
        let dir = fixturesDirectory.appendingPathComponent("bad")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name -> Fixture? in
            let url = dir.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
            let recipe: URL
            if isDirectory.boolValue {
                recipe = url.appendingPathComponent("main.yaml")
            } else if name.hasSuffix(".yaml") {
                recipe = url
            } else {
                return nil
            }
            let sidecar = recipe.deletingPathExtension().appendingPathExtension("expect")
            let text = (try? String(contentsOf: sidecar, encoding: .utf8))
                ?? String(decoding: (try? Data(contentsOf: recipe)) ?? Data(), as: UTF8.self)
            var expectations: [FixtureExpectation] = []
            var overrides: [String] = []
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("# set: ") { overrides.append(String(line.dropFirst(7))) }
                guard line.hasPrefix("# expect: ") || line.hasPrefix("expect: ") else { continue }
                if let e = parse(String(line.drop { $0 != ":" }.dropFirst().drop { $0 == " " })) { expectations.append(e) }
            }
            return Fixture(name: name, recipePath: recipe.path, expectations: expectations, overrides: overrides)
        }
    }

    /// "12:5 error: fragment", "base.yaml:3:7 warning: fragment", "- error: fragment".
    static func parse(_ text: String) -> FixtureExpectation? {
        let parts = text.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, let severity = Severity(rawValue: String(parts[1].dropLast())) else { return nil }
        if parts[0] == "-" { return FixtureExpectation(file: nil, line: nil, column: nil, severity: severity, fragment: parts[2]) }
        let fields = parts[0].split(separator: ":").map(String.init)
        guard fields.count >= 2, let line = Int(fields[fields.count - 2]), let column = Int(fields[fields.count - 1]) else { return nil }
        let file = fields.count > 2 ? fields.dropLast(2).joined(separator: ":") : nil
        return FixtureExpectation(file: file, line: line, column: column, severity: severity, fragment: parts[2])
    }
}

@Suite("Bad recipe fixtures")
struct BadRecipeFixtureTests {
    @Test("there are at least 40 fixtures, each stating an expectation")
    func enoughFixtures() {
        let fixtures = Fixture.all()
        #expect(fixtures.count >= 40)
        for fixture in fixtures {
            #expect(!fixture.expectations.isEmpty, "\(fixture.name) states no '# expect:' line")
        }
    }

    @Test("each fixture yields exactly its expected located diagnostics", arguments: Fixture.all())
    func fixture(_ fixture: Fixture) {
        let (_, diagnostics) = validate(fixture.recipePath, overrides: fixture.overrides)
        let main = URL(fileURLWithPath: fixture.recipePath).lastPathComponent
        for expectation in fixture.expectations {
            #expect(diagnostics.items.contains { expectation.matches($0, mainFile: main) },
                    "\(fixture.name): expected \(expectation); got:\n\(Self.list(diagnostics))")
        }
        for error in diagnostics.errors {
            #expect(fixture.expectations.contains { $0.matches(error, mainFile: main) },
                    "\(fixture.name): unexpected error \(error.location?.description ?? "-") \(error.message)")
        }
        #expect(diagnostics.hasErrors, "\(fixture.name) validated without errors")
    }

    static func list(_ d: DiagnosticSet) -> String {
        d.items.map { "  \($0.location?.description ?? "-") \($0.severity.rawValue): \($0.message)" }.joined(separator: "\n")
    }
}
