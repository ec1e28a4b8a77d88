import KondateSupport

/// Why a metric could not be computed or looked up.
public enum MetricError: Error, Equatable, CustomStringConvertible {
    /// No metric has that name; `suggestion` is the closest known name, if any is close.
    case unknownMetric(name: String, suggestion: String?)
    /// A metric llm-jp-eval has but Kondate does not compute (it needs a neural model).
    case unsupportedMetric(name: String, reason: String)
    /// Predictions and golds (or a reference stream) differ in length.
    case lengthMismatch(predictions: Int, golds: Int)
    /// No pairs to score (the reference raises on an empty mean too).
    case empty(metric: String)
    /// A correlation needs at least two pairs (scipy's `pearsonr` raises below that).
    case tooFewPairs(metric: String, count: Int)
    /// A gold answer of a correlation metric that Python's `float` cannot read.
    case invalidGold(metric: String, value: String)
    /// BLEU was given no reference stream.
    case noReferences

    public var description: String {
        switch self {
        case let .unknownMetric(name, suggestion):
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            return "unknown metric '\(name)'\(hint); known metrics: \(Metrics.names.joined(separator: ", "))"
        case let .unsupportedMetric(name, reason):
            return "metric '\(name)' is not available in Kondate: \(reason)"
        case let .lengthMismatch(predictions, golds):
            return "\(predictions) predictions but \(golds) gold answers"
        case let .empty(metric):
            return "\(metric) needs at least one prediction"
        case let .tooFewPairs(metric, count):
            return "\(metric) needs at least 2 pairs, got \(count)"
        case let .invalidGold(metric, value):
            return "\(metric): the gold answer '\(value)' is not a number"
        case .noReferences:
            return "bleu needs at least one reference stream"
        }
    }
}

/// One llm-jp-eval metric: a name and a function from aligned predictions and gold answers (already
/// post-processed, see `AnswerPostprocessing`) to one dataset score.
public struct Metric: Sendable {
    public let name: String
    /// What the score is, in one line.
    public let summary: String
    private let body: @Sendable ([String], [String]) throws(MetricError) -> Double

    init(_ name: String, _ summary: String,
         _ body: @escaping @Sendable ([String], [String]) throws(MetricError) -> Double) {
        self.name = name
        self.summary = summary
        self.body = body
    }

    /// The dataset score for aligned `predictions` and `golds`.
    public func score(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        guard predictions.count == golds.count else {
            throw .lengthMismatch(predictions: predictions.count, golds: golds.count)
        }
        guard !predictions.isEmpty else { throw .empty(metric: name) }
        return try body(predictions, golds)
    }
}

/// The metrics of llm-jp-eval v1.3, computed the way its `get_evaluation_result` computes them, on the
/// scale it reports (0–1 for all but BLEU, whose 0–100 sacrebleu score is reported as is).
///
/// | name | definition |
/// |---|---|
/// | `exact_match` | share of pairs whose strings are identical (`sklearn.metrics.accuracy_score`) |
/// | `char_f1` | mean of `fuzz.token_sort_ratio(pred, gold) / 100` (fuzzywuzzy with python-Levenshtein) |
/// | `set_f1` | mean of llm-jp-eval's line-set F1, quirks included (see `setF1(_:_:)`) |
/// | `pearson` | `scipy.stats.pearsonr(float(gold), parse_float(pred))`, NaN reported as 0 |
/// | `spearman` | `scipy.stats.spearmanr(float(gold), parse_float(pred))`, NaN reported as 0 |
/// | `bleu_en` | `sacrebleu.BLEU().corpus_score(preds, [golds]).score` (13a tokenizer) |
/// | `bleu_ja` | `sacrebleu.BLEU(tokenize="char").corpus_score(preds, [golds]).score` — **not** llm-jp-eval's MeCab number |
///
/// `bleu_ja` differs from llm-jp-eval on purpose: llm-jp-eval uses `BLEU(trg_lang="ja")`, i.e. sacrebleu's
/// `ja-mecab` tokenizer (MeCab with IPADIC), which Kondate does not ship. Kondate scores Japanese BLEU on
/// characters instead, so its `bleu_ja` is systematically different from (typically higher than)
/// llm-jp-eval's and must not be compared with published numbers.
///
/// `bert_score_en_f1`, `bert_score_ja_f1` and `comet_wmt22` need neural models; looking them up throws
/// `MetricError.unsupportedMetric`.
public enum Metrics {
    /// Every metric Kondate computes, in llm-jp-eval's order.
    public static let all: [Metric] = [
        Metric("exact_match", "share of predictions identical to the gold answer", exactMatch),
        Metric("char_f1", "mean fuzzywuzzy token_sort_ratio / 100", charF1),
        Metric("set_f1", "mean F1 of the sets of answer lines", setF1),
        Metric("pearson", "Pearson correlation of the numbers read from predictions and golds", pearson),
        Metric("spearman", "Spearman correlation of the numbers read from predictions and golds", spearman),
        Metric("bleu_en", "sacrebleu corpus BLEU, 13a tokenizer (0-100)", bleuEn),
        Metric("bleu_ja", "sacrebleu corpus BLEU, character tokenizer (0-100; not MeCab)", bleuJa),
    ]

    /// The names of `all`.
    public static var names: [String] { all.map(\.name) }

    /// llm-jp-eval metrics that need a neural model, which Kondate does not compute.
    public static let modelBasedNames = ["bert_score_en_f1", "bert_score_ja_f1", "comet_wmt22"]

    /// The metric called `name`; throws `unsupportedMetric` for a model-based llm-jp-eval metric and
    /// `unknownMetric` with the closest known name for anything else.
    public static func metric(named name: String) throws(MetricError) -> Metric {
        if let metric = all.first(where: { $0.name == name }) { return metric }
        if modelBasedNames.contains(name) {
            throw .unsupportedMetric(name: name, reason: "it needs a neural model (BERTScore or COMET)")
        }
        throw .unknownMetric(name: name, suggestion: Suggestions.closest(to: name, in: names + modelBasedNames))
    }

    /// Scores aligned predictions and golds with the metric called `name`.
    public static func score(_ name: String, predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try metric(named: name).score(predictions: predictions, golds: golds)
    }

    // MARK: - Dataset-level metrics

    /// `accuracy_score(golds, predictions)`: the share of pairs whose strings have the same code points
    /// (no Unicode equivalence, as in Python).
    public static func exactMatch(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("exact_match", predictions, golds)
        let hits = zip(predictions, golds).filter { $0.unicodeScalars.elementsEqual($1.unicodeScalars) }.count
        return Double(hits) / Double(predictions.count)
    }

    /// The mean of `FuzzyMatch.charF1` over the pairs.
    public static func charF1(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("char_f1", predictions, golds)
        return mean(zip(predictions, golds).map { FuzzyMatch.charF1($0, $1) })
    }

    /// The mean of `setF1(_:_:)` over the pairs.
    public static func setF1(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("set_f1", predictions, golds)
        return mean(zip(predictions, golds).map { setF1($0, $1) })
    }

    /// llm-jp-eval's `set_f1` for one pair, exactly as written there:
    ///
    /// ```python
    /// set_y_true = [x.strip() for x in y_true.split("\n")]
    /// set_y_pred = list({x.strip() for x in y_pred.split("\n")})
    /// set_pre = sum([1 if y in set_y_true else 0 for y in set_y_pred]) / len(set_y_pred)
    /// set_rec = sum([1 if y in set_y_true else 0 for y in set_y_pred]) / len(set_y_true)
    /// set_f1 = 2 * (set_pre * set_rec) / (set_pre + set_rec) if (set_pre + set_rec) != 0 else 0
    /// ```
    ///
    /// Quirks kept on purpose: the prediction lines are deduplicated but the gold lines are not, so a
    /// gold answer with repeated lines can never be fully recalled; recall counts predicted lines found
    /// in the gold (not gold lines found in the prediction); empty lines (from blank lines or a trailing
    /// newline) are ordinary elements, so `"a\n"` against `"a"` is not a perfect match.
    public static func setF1(_ prediction: String, _ gold: String) -> Double {
        let goldLines = PythonText.split(PythonText.codePoints(gold), on: "\n").map(PythonText.strip)
        var predictedLines = Set<PythonText.CodePoints>()
        for line in PythonText.split(PythonText.codePoints(prediction), on: "\n") { predictedLines.insert(PythonText.strip(line)) }
        let goldSet = Set(goldLines)
        let found = Double(predictedLines.filter { goldSet.contains($0) }.count)
        let precision = found / Double(predictedLines.count)
        let recall = found / Double(goldLines.count)
        return precision + recall != 0 ? 2 * (precision * recall) / (precision + recall) : 0
    }

    /// llm-jp-eval's `pearson`: `pearsonr(map(float, golds), map(parse_float, predictions))[0]`, with a NaN
    /// result (a constant side, e.g. every prediction unparsable and so -2.0) reported as 0.0.
    /// Unparsable predictions count as -2.0 (see `Correlation.parseFloat`).
    public static func pearson(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("pearson", predictions, golds)
        let r = try Correlation.pearson(try numbers("pearson", golds), predictions.map(Correlation.parseFloat))
        return r.isNaN ? 0.0 : r
    }

    /// llm-jp-eval's `spearman`, the rank-correlation counterpart of `pearson(predictions:golds:)`.
    public static func spearman(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("spearman", predictions, golds)
        let r = try Correlation.spearman(try numbers("spearman", golds), predictions.map(Correlation.parseFloat))
        return r.isNaN ? 0.0 : r
    }

    /// `sacrebleu.BLEU().corpus_score(predictions, [golds]).score` (0–100).
    public static func bleuEn(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("bleu_en", predictions, golds)
        return try BLEU().corpusScore(hypotheses: predictions, references: [golds]).score
    }

    /// `sacrebleu.BLEU(tokenize="char").corpus_score(predictions, [golds]).score` (0–100).
    ///
    /// llm-jp-eval's `bleu_ja` is `BLEU(trg_lang="ja")`, which tokenizes with MeCab (sacrebleu's
    /// `ja-mecab`); Kondate tokenizes into characters because it does not ship MeCab, so this number is
    /// not comparable with llm-jp-eval's `bleu_ja`.
    public static func bleuJa(predictions: [String], golds: [String]) throws(MetricError) -> Double {
        try checked("bleu_ja", predictions, golds)
        return try BLEU(tokenizer: .char).corpusScore(hypotheses: predictions, references: [golds]).score
    }

    // MARK: - Helpers

    private static func checked(_ name: String, _ predictions: [String], _ golds: [String]) throws(MetricError) {
        guard predictions.count == golds.count else {
            throw .lengthMismatch(predictions: predictions.count, golds: golds.count)
        }
        guard !predictions.isEmpty else { throw .empty(metric: name) }
    }

    /// `float(gold)` for every gold answer.
    private static func numbers(_ metric: String, _ golds: [String]) throws(MetricError) -> [Double] {
        var values = [Double]()
        for gold in golds {
            guard let value = PythonText.parseFloat(gold) else { throw .invalidGold(metric: metric, value: gold) }
            values.append(value)
        }
        return values
    }

    private static func mean(_ values: [Double]) -> Double {
        values.reduce(0, +) / Double(values.count)
    }
}
