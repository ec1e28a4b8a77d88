import Foundation
import Testing
import KondateSupport
import KondateTestSupport
@testable import KondateEval

/// Reference values written by `scripts/make_metric_fixtures.py` with fuzzywuzzy + python-Levenshtein,
/// scipy and sacrebleu (the versions are recorded in the file's "generator" entry).
private let fixtures: JSON = {
    let url = repositoryRoot.appendingPathComponent("Tests/KondateEvalTests/Fixtures/metrics.json")
    guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8),
          let json = try? JSONParser.parse(text) else {
        fatalError("cannot read \(url.path)")
    }
    return json
}()

private let tolerance = 1e-6

private func cases(_ key: String) -> [JSON] {
    guard case let .array(items)? = fixtures[key] else {
        Issue.record("fixture section \(key) is missing")
        return []
    }
    return items
}

private extension JSON {
    var string: String {
        if case let .string(s) = self { return s }
        fatalError("not a string: \(self)")
    }

    /// A number; JSON null stands for NaN (the generator writes non-finite values as null).
    var double: Double {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case .null: return .nan
        default: fatalError("not a number: \(self)")
        }
    }

    var int: Int {
        if case let .int(i) = self { return i }
        fatalError("not an integer: \(self)")
    }

    var bool: Bool {
        if case let .bool(b) = self { return b }
        fatalError("not a boolean: \(self)")
    }

    var array: [JSON] {
        if case let .array(items) = self { return items }
        fatalError("not an array: \(self)")
    }

    var strings: [String] { array.map(\.string) }

    func field(_ key: String) -> JSON {
        guard let value = self[key] else { fatalError("missing field \(key)") }
        return value
    }
}

private func same(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.elementsEqual(b.unicodeScalars)
}

private func close(_ a: Double, _ b: Double) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    return abs(a - b) <= tolerance
}

@Suite("llm-jp-eval metric fixtures")
struct MetricFixtureTests {
    @Test func fixtureFileCoversEveryMetric() {
        for key in ["char_f1", "char_f1_mean", "set_f1", "set_f1_mean", "exact_match", "parse_float", "correlation",
                    "char_f1_random", "bleu_en", "bleu_ja", "bleu_variants", "bleu_random", "tokenize_13a", "tokenize_char", "postprocess"] {
            #expect(!cases(key).isEmpty, "no cases for \(key)")
        }
        #expect(cases("char_f1").count >= 50)
        #expect(cases("bleu_en").count >= 10)
    }

    @Test func charF1MatchesFuzzywuzzyTokenSortRatio() {
        for c in cases("char_f1") {
            let pred = c.field("pred").string, gold = c.field("gold").string
            let context = Comment(rawValue: "pred \(pred.debugDescription) gold \(gold.debugDescription)")
            #expect(same(FuzzyMatch.processAndSort(pred), c.field("processed_pred").string), context)
            #expect(same(FuzzyMatch.processAndSort(gold), c.field("processed_gold").string), context)
            #expect(FuzzyMatch.tokenSortRatio(pred, gold) == c.field("token_sort_ratio").int, context)
            #expect(close(FuzzyMatch.charF1(pred, gold), c.field("score").double), context)
        }
    }

    @Test func charF1RandomPairs() {
        for c in cases("char_f1_random") {
            let pred = c.field("pred").string, gold = c.field("gold").string
            let context = Comment(rawValue: "pred \(pred.debugDescription) gold \(gold.debugDescription)")
            #expect(same(FuzzyMatch.processAndSort(pred), c.field("processed_pred").string), context)
            #expect(FuzzyMatch.tokenSortRatio(pred, gold) == c.field("token_sort_ratio").int, context)
        }
    }

    @Test func charF1DatasetMeans() throws {
        for c in cases("char_f1_mean") {
            let score = try Metrics.score("char_f1", predictions: c.field("preds").strings, golds: c.field("golds").strings)
            #expect(close(score, c.field("score").double))
        }
    }

    @Test func setF1MatchesLLMJPEval() throws {
        for c in cases("set_f1") {
            let pred = c.field("pred").string, gold = c.field("gold").string
            #expect(close(Metrics.setF1(pred, gold), c.field("score").double),
                    "pred \(pred.debugDescription) gold \(gold.debugDescription)")
        }
        for c in cases("set_f1_mean") {
            let score = try Metrics.score("set_f1", predictions: c.field("preds").strings, golds: c.field("golds").strings)
            #expect(close(score, c.field("score").double))
        }
    }

    @Test func exactMatchIsAccuracyOnCodePoints() throws {
        for c in cases("exact_match") {
            let score = try Metrics.score("exact_match", predictions: c.field("preds").strings,
                                          golds: c.field("golds").strings)
            #expect(close(score, c.field("score").double), "\(c.field("preds").strings)")
        }
    }

    @Test func parseFloatFallsBackLikeLLMJPEval() {
        for c in cases("parse_float") {
            let input = c.field("input").string
            let expected = c.field("value").double
            let value = Correlation.parseFloat(input)
            #expect(value == expected || (abs(value - expected) <= abs(expected) * 1e-15), "input \(input.debugDescription)")
        }
    }

    @Test func correlationsMatchScipy() throws {
        for c in cases("correlation") {
            let preds = c.field("preds").strings, golds = c.field("golds").strings
            let x = golds.map { Double($0)! }, y = preds.map(Correlation.parseFloat)
            let context = Comment(rawValue: "preds \(preds) golds \(golds)")
            #expect(close(try Correlation.pearson(x, y), c.field("pearson_raw").double), context)
            #expect(close(try Correlation.spearman(x, y), c.field("spearman_raw").double), context)
            #expect(close(try Metrics.score("pearson", predictions: preds, golds: golds), c.field("pearson").double), context)
            #expect(close(try Metrics.score("spearman", predictions: preds, golds: golds), c.field("spearman").double), context)
        }
    }

    private func checkBLEU(_ c: JSON) throws {
        let settings = c.field("settings")
        let smoothValue = settings.field("smooth_value")
        let bleu = BLEU(tokenizer: BLEU.Tokenizer(rawValue: settings.field("tokenize").string)!,
                        lowercase: settings.field("lowercase").bool,
                        smoothing: BLEU.Smoothing(rawValue: settings.field("smooth_method").string)!,
                        smoothValue: smoothValue == .null ? nil : smoothValue.double,
                        maxNgramOrder: settings.field("max_ngram_order").int,
                        effectiveOrder: settings.field("effective_order").bool)
        let refs = c.field("refs").array.map(\.strings)
        let result = try bleu.corpusScore(hypotheses: c.field("hyps").strings, references: refs)
        let context = Comment(rawValue: c.field("name").string)
        #expect(close(result.score, c.field("score").double), context)
        if c.field("counts") != .null {
            #expect(result.counts == c.field("counts").array.map(\.int), context)
            #expect(result.totals == c.field("totals").array.map(\.int), context)
        }
        #expect(result.systemLength == c.field("sys_len").int, context)
        #expect(result.referenceLength == c.field("ref_len").int, context)
        #expect(close(result.brevityPenalty, c.field("bp").double), context)
        let precisions = c.field("precisions").array.map(\.double)
        #expect(precisions.count == result.precisions.count, context)
        #expect(zip(result.precisions, precisions).allSatisfy { close($0, $1) }, context)
    }

    @Test func bleuEnMatchesSacrebleu13a() throws {
        for c in cases("bleu_en") {
            try checkBLEU(c)
            let refs = c.field("refs").array.map(\.strings)
            if refs.count == 1 {
                let score = try Metrics.score("bleu_en", predictions: c.field("hyps").strings, golds: refs[0])
                #expect(close(score, c.field("score").double), Comment(rawValue: c.field("name").string))
            }
        }
    }

    @Test func bleuJaMatchesSacrebleuChar() throws {
        for c in cases("bleu_ja") {
            try checkBLEU(c)
            let refs = c.field("refs").array.map(\.strings)
            let score = try Metrics.score("bleu_ja", predictions: c.field("hyps").strings, golds: refs[0])
            #expect(close(score, c.field("score").double), Comment(rawValue: c.field("name").string))
        }
    }

    @Test func bleuSettingsVariants() throws {
        for c in cases("bleu_variants") { try checkBLEU(c) }
    }

    @Test func bleuRandomCorpora() throws {
        for c in cases("bleu_random") { try checkBLEU(c) }
    }

    @Test func tokenizersMatchSacrebleu() {
        for c in cases("tokenize_13a") {
            let input = c.field("input").string
            #expect(same(BLEU().tokenizedSegment(input), c.field("output").string), "13a \(input.debugDescription)")
        }
        for c in cases("tokenize_char") {
            let input = c.field("input").string
            #expect(same(BLEU(tokenizer: .char).tokenizedSegment(input), c.field("output").string),
                    "char \(input.debugDescription)")
        }
    }

    @Test func postprocessingMatchesLLMJPEval() {
        for c in cases("postprocess") {
            let generated = c.field("generated").string
            let pred = AnswerPostprocessing.prediction(fromGenerated: generated)
            let gold = AnswerPostprocessing.gold(generated)
            #expect(same(pred, c.field("pred").string), "\(generated.debugDescription)")
            #expect(same(gold, c.field("gold").string), "\(generated.debugDescription)")
        }
    }
}
