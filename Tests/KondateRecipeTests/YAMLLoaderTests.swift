import Foundation
import Testing
@testable import KondateRecipe

@Suite("YAML loading: positions and safety limits")
struct YAMLLoaderTests {
    func load(_ text: String) -> (YAMLNode?, DiagnosticSet) {
        var d = DiagnosticSet()
        let node = YAMLLoader().load(data: Data(text.utf8), file: "t.yaml", into: &d)
        return (node, d)
    }

    @Test func keysAndValuesKeepLineAndColumn() throws {
        let (node, d) = load("a: 1\nb:\n  c: [x, 'y']\n")
        #expect(!d.hasErrors)
        let root = try #require(node)
        let b = try #require(root.entries?.first { $0.key == "b" })
        #expect(b.keyLocation == SourceLocation(file: "t.yaml", line: 2, column: 1))
        let c = try #require(b.value.entries?.first)
        #expect(c.keyLocation == SourceLocation(file: "t.yaml", line: 3, column: 3))
        guard case let .sequence(items) = c.value.kind else { Issue.record("not a list"); return }
        #expect(items[1].location == SourceLocation(file: "t.yaml", line: 3, column: 10))
        guard case let .scalar(text, quoted) = items[1].kind else { return }
        #expect(text == "y" && quoted)
    }

    @Test func billionLaughsFailsFast() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...9 { text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        let start = Date()
        let (node, d) = load(text)
        #expect(node == nil)
        #expect(d.errors.first?.code == .aliasBomb)
        #expect(Date().timeIntervalSince(start) < 5, "alias expansion was not bounded")
    }

    @Test func smallAliasesAreFine() throws {
        let (node, d) = load("base: &b {x: 1}\ncopy: *b\n")
        #expect(!d.hasErrors)
        #expect(node?["copy"]?["x"]?.scalarText == "1")
    }

    @Test func deepFlowNestingIsRefusedBeforeParsing() {
        let (node, d) = load("a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n")
        #expect(node == nil)
        #expect(d.errors.first?.code == .tooDeep)
    }

    @Test func deepBlockNestingIsRefused() {
        var text = ""
        for i in 0..<80 { text += String(repeating: " ", count: i) + "k\(i):\n" }
        let (node, d) = load(text + String(repeating: " ", count: 80) + "v: 1\n")
        #expect(node == nil)
        #expect(d.errors.first?.code == .tooDeep)
    }

    @Test func duplicateKeysPointAtTheSecondOne() {
        let (_, d) = load("a: 1\nb: 2\na: 3\n")
        let error = d.errors.first
        #expect(error?.code == .duplicateKey)
        #expect(error?.location?.line == 3)
        #expect(error?.notes.first?.location?.line == 1)
    }

    @Test func customTagsAreRefused() {
        let (_, d) = load("a: !!python/object:os.system ls\n")
        #expect(d.errors.first?.code == .unsupportedTag)
        let (_, d2) = load("a: !!str 12\n")
        #expect(!d2.hasErrors)
    }

    @Test func badEncodingsAndEmptyFilesAreErrors() {
        var d = DiagnosticSet()
        _ = YAMLLoader().load(data: Data([0x61, 0x3A, 0x20, 0xFF, 0x0A]), file: "t.yaml", into: &d)
        #expect(d.errors.first?.code == .notUTF8)
        #expect(d.errors.first?.location?.column == 4)
        d = DiagnosticSet()
        _ = YAMLLoader().load(data: Data([0x61, 0x00, 0x62]), file: "t.yaml", into: &d)
        #expect(d.errors.first?.code == .binaryFile)
        d = DiagnosticSet()
        _ = YAMLLoader().load(data: Data([0xFF, 0xFE, 0x61, 0x00]), file: "t.yaml", into: &d)
        #expect(d.errors.first?.code == .notUTF8)
        #expect(load("").1.errors.first?.code == .emptyFile)
        #expect(load("# only a comment\n").1.errors.first?.code == .emptyFile)
    }

    @Test func syntaxErrorsAreLocated() {
        let (_, d) = load("a: [1, 2\nb: 3\n")
        #expect(d.errors.first?.code == .yamlSyntax)
        #expect(d.errors.first?.location != nil)
        let (_, d2) = load("a: 1\n---\nb: 2\n")
        #expect(d2.errors.first?.message.contains("single YAML document") == true)
    }
}

@Suite("Units in numbers")
struct UnitsTests {
    @Test func counts() throws {
        #expect(try Units.count("4096").get() == 4096)
        #expect(try Units.count("2_000").get() == 2000)
        #expect(try Units.count("4k").get() == 4000)
        #expect(try Units.count("4Ki").get() == 4096)
        #expect(try Units.count("260B").get() == 260_000_000_000)
        #expect(try Units.count("130.05B").get() == 130_050_000_000)
        #expect(try Units.count("1.5M").get() == 1_500_000)
        #expect(try Units.count("3e9").get() == 3_000_000_000)
        #expect(Units.count("1.5") == .failure(.notWhole))
        #expect(Units.count("4Q") == .failure(.unknownSuffix("Q")))
        #expect(Units.count("abc") == .failure(.notANumber))
        #expect(Units.count("99999999T") == .failure(.tooLarge))
        #expect(Units.count("1__0") == .failure(.notANumber))
    }

    @Test func bytesAndReals() throws {
        #expect(try Units.bytes("40GiB").get() == 40 << 30)
        #expect(try Units.bytes("40GB").get() == 40_000_000_000)
        #expect(try Units.bytes("512").get() == 512)
        #expect(Units.bytes("40Gi") == .failure(.unknownSuffix("Gi")))
        #expect(try Units.real("3e-4").get() == 3e-4)
        #expect(try Units.real("40%").get() == 0.4)
        #expect(try Units.real("312T").get() == 312e12)
        #expect(try Units.real("-0.5").get() == -0.5)
    }
}
