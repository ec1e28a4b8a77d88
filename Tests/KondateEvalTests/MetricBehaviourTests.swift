import Testing
@testable import KondateEval

@Suite("Metric registry")
struct MetricRegistryTests {
    @Test func namesAreLLMJPEvalsInOrder() {
        #expect(Metrics.names == ["exact_match", "char_f1", "set_f1", "pearson", "spearman", "bleu_en", "bleu_ja"])
        for name in Metrics.names { #expect((try? Metrics.metric(named: name))?.name == name) }
    }

    @Test func unknownNameSuggestsTheClosest() {
        #expect(throws: MetricError.unknownMetric(name: "char_f2", suggestion: "char_f1")) {
            try Metrics.metric(named: "char_f2")
        }
        #expect(throws: MetricError.unknownMetric(name: "bleu-en", suggestion: "bleu_en")) {
            try Metrics.metric(named: "bleu-en")
        }
        #expect(throws: MetricError.unknownMetric(name: "EXACT_MATCH", suggestion: "exact_match")) {
            try Metrics.metric(named: "EXACT_MATCH")
        }
        #expect(throws: MetricError.unknownMetric(name: "perplexity", suggestion: nil)) {
            try Metrics.metric(named: "perplexity")
        }
        let message = MetricError.unknownMetric(name: "set_f", suggestion: "set_f1").description
        #expect(message.contains("did you mean 'set_f1'?"))
        #expect(message.contains("exact_match, char_f1"))
    }

    @Test func modelBasedMetricsAreRefusedWithAReason() {
        for name in Metrics.modelBasedNames {
            do {
                _ = try Metrics.metric(named: name)
                Issue.record("\(name) should be unsupported")
            } catch {
                guard case let .unsupportedMetric(found, reason) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(found == name)
                #expect(reason.contains("neural model"))
            }
        }
        #expect(throws: MetricError.unknownMetric(name: "comet_wmt2", suggestion: "comet_wmt22")) {
            try Metrics.metric(named: "comet_wmt2")
        }
    }

    @Test func inputErrors() {
        #expect(throws: MetricError.lengthMismatch(predictions: 2, golds: 1)) {
            try Metrics.score("exact_match", predictions: ["a", "b"], golds: ["a"])
        }
        #expect(throws: MetricError.empty(metric: "char_f1")) {
            try Metrics.score("char_f1", predictions: [], golds: [])
        }
        #expect(throws: MetricError.tooFewPairs(metric: "pearson", count: 1)) {
            try Metrics.score("pearson", predictions: ["1"], golds: ["1.0"])
        }
        #expect(throws: MetricError.invalidGold(metric: "spearman", value: "high")) {
            try Metrics.score("spearman", predictions: ["1", "2"], golds: ["high", "2"])
        }
        #expect(throws: MetricError.lengthMismatch(predictions: 2, golds: 1)) {
            try BLEU().corpusScore(hypotheses: ["a", "b"], references: [["a"]])
        }
        #expect(throws: MetricError.noReferences) {
            try BLEU().corpusScore(hypotheses: ["a"], references: [])
        }
    }
}

@Suite("set_f1 and friends")
struct MetricBehaviourTests {
    /// Gold lines are not deduplicated, so a repeated gold line caps recall below 1.
    @Test func setF1DoesNotDeduplicateGoldLines() {
        // precision 1/1, recall 1/2 -> 2/3
        #expect(abs(Metrics.setF1("a", "a\na") - 2.0 / 3.0) < 1e-12)
        // predicted duplicates collapse: {a} against [a]
        #expect(Metrics.setF1("a\na\na", "a") == 1)
        // recall counts predicted lines found in the gold: {a, b} vs [a, a, c] -> p 1/2, r 1/3
        let p = 0.5, r = 1.0 / 3.0
        #expect(abs(Metrics.setF1("a\nb", "a\na\nc") - 2 * p * r / (p + r)) < 1e-12)
    }

    @Test func setF1CountsEmptyLines() {
        // a trailing newline adds an empty predicted line: {a, ""} vs [a] -> p 1/2, r 1/1
        #expect(abs(Metrics.setF1("a\n", "a") - 2.0 / 3.0) < 1e-12)
        #expect(Metrics.setF1("", "") == 1)
        #expect(Metrics.setF1("x", "") == 0)
        // lines are stripped, but only "\n" separates them
        #expect(Metrics.setF1(" a \n\tb\u{3000}", "a\nb") == 1)
        #expect(Metrics.setF1("a\r\nb", "a\nb") == 1)
    }

    @Test func exactMatchComparesCodePoints() throws {
        // Swift's == would call these equal (canonical equivalence); Python does not.
        #expect(try Metrics.exactMatch(predictions: ["e\u{301}"], golds: ["\u{E9}"]) == 0)
        #expect(try Metrics.exactMatch(predictions: ["\u{E9}", "x"], golds: ["\u{E9}", "y"]) == 0.5)
    }

    @Test func charF1EdgeCases() {
        #expect(FuzzyMatch.tokenSortRatio("", "") == 100)
        #expect(FuzzyMatch.tokenSortRatio("!!!", "...") == 100)
        #expect(FuzzyMatch.tokenSortRatio("", "a") == 0)
        #expect(FuzzyMatch.tokenSortRatio("b a", "A B") == 100)
        // 100 * (1 - 1/8) = 87.5 rounds to even
        #expect(FuzzyMatch.tokenSortRatio("abcdefgh", "abcdefgx") == 88)
        // 100 * 2/16 = 12.5 rounds to even
        #expect(FuzzyMatch.tokenSortRatio("aaaaaaaaaaaaaaa", "a") == 12)
        #expect(FuzzyMatch.fullProcess("Café, ＡＢ!") == "caf  ａｂ")
    }

    @Test func correlationNaNBecomesZero() throws {
        // every prediction unparsable -> all -2.0 -> constant -> NaN -> 0.0
        #expect(try Metrics.pearson(predictions: ["?", "x", ""], golds: ["1", "2", "3"]) == 0)
        #expect(try Metrics.spearman(predictions: ["?", "x", ""], golds: ["1", "2", "3"]) == 0)
        #expect(try Correlation.pearson([1, 2, 3], [5, 5, 5]).isNaN)
        #expect(try Correlation.spearman([1], [2]).isNaN)
        #expect(Correlation.parseFloat("n/a") == -2.0)
        #expect(Correlation.averageRanks([10, 20, 10, 30]) == [1.5, 3, 1.5, 4])
    }

    @Test func bleuJaIsCharacterLevel() throws {
        #expect(BLEU(tokenizer: .char).tokens("東京 タワー") == ["東", "京", "タ", "ワ", "ー"])
        let score = try Metrics.bleuJa(predictions: ["東京タワーは高い"], golds: ["東京タワーは高い"])
        #expect(abs(score - 100) < 1e-9)
    }

    @Test func postprocessingCutsAtTheFirstBlankLine() {
        #expect(AnswerPostprocessing.prediction(fromGenerated: " ＹＥＳ\n\n理由: ...") == "YES")
        #expect(AnswerPostprocessing.prediction(fromGenerated: "a\nb\n\nc") == "a\nb")
        #expect(AnswerPostprocessing.gold("ｶﾀｶﾅ ") == "カタカナ ")
    }
}

@Suite("llm-jp-eval categories")
struct CategoryTests {
    private var everyKey: [String: Double] {
        var scores = [String: Double]()
        for (c, category) in LLMJPCategories.table.enumerated() {
            for (k, key) in category.scoreKeys.enumerated() { scores[key] = Double(c) / 10 + Double(k) / 100 }
        }
        return scores
    }

    @Test func tableHasTheNineCategories() {
        #expect(LLMJPCategories.table.map(\.name) == ["NLI", "QA", "RC", "MC", "EL", "FA", "MR", "MT", "HE"])
        let keys = LLMJPCategories.table.flatMap(\.scoreKeys)
        #expect(Set(keys).count == keys.count)
        #expect(keys.count == 22)
        #expect(!keys.contains { $0.hasPrefix("jsts") })
    }

    @Test func categoryMetricPerDataset() {
        #expect(LLMJPCategories.categoryMetric(forDataset: "jsquad") == "char_f1")
        #expect(LLMJPCategories.categoryMetric(forDataset: "wiki_reading") == "char_f1")
        #expect(LLMJPCategories.categoryMetric(forDataset: "wiki_ner") == "set_f1")
        #expect(LLMJPCategories.categoryMetric(forDataset: "chabsa") == "set_f1")
        #expect(LLMJPCategories.categoryMetric(forDataset: "alt-e-to-j") == "comet_wmt22")
        #expect(LLMJPCategories.categoryMetric(forDataset: "mmluen") == "exact_match")
        #expect(LLMJPCategories.categoryMetric(forDataset: "jsts") == nil)
    }

    @Test func completeScoresGiveLLMJPEvalsAverage() {
        var scores = everyKey
        scores["jsts_pearson"] = 0.99
        scores["jsquad_bleu_ja"] = 50
        let report = LLMJPCategories.report(scores)
        #expect(report.isComplete)
        // NLI: 0.00, 0.01, ..., 0.04 -> 0.02
        #expect(abs(report.score(of: "NLI")! - 0.02) < 1e-12)
        // FA (index 5): 0.50 ... 0.54 -> 0.52
        #expect(abs(report.score(of: "FA")! - 0.52) < 1e-12)
        // HE (index 8): 0.80, 0.81 -> 0.805
        #expect(abs(report.score(of: "HE")! - 0.805) < 1e-12)
        let categoryScores = report.categories.compactMap(\.score)
        #expect(categoryScores.count == 9)
        #expect(abs(report.average! - categoryScores.reduce(0, +) / 9) < 1e-12)
        // jsts and non-category metrics do not move the average
        #expect(report == LLMJPCategories.report(everyKey))
    }

    @Test func averagesAreOverCategoriesNotDatasets() {
        // NLI has five datasets and RC one; each category weighs the same.
        let report = LLMJPCategories.report([
            "jamp_exact_match": 1, "janli_exact_match": 1, "jnli_exact_match": 1, "jsem_exact_match": 1,
            "jsick_exact_match": 1, "jsquad_char_f1": 0,
        ])
        #expect(report.score(of: "NLI") == 1)
        #expect(report.score(of: "RC") == 0)
        #expect(report.average == 0.5)
        #expect(!report.isComplete)
        #expect(report.score(of: "MT") == nil)
    }

    @Test func missingCategoriesAndEmptyInput() {
        var scores = everyKey
        for key in LLMJPCategories.table.first(where: { $0.name == "MT" })!.scoreKeys { scores[key] = nil }
        let report = LLMJPCategories.report(scores)
        #expect(!report.isComplete)
        #expect(report.score(of: "MT") == nil)
        #expect(report.categories.count == 9)
        let empty = LLMJPCategories.report([:])
        #expect(empty.average == nil)
        #expect(!empty.isComplete)
    }
}
