import Foundation

/// sacrebleu 2.x's `BLEU` metric (`sacrebleu.metrics.BLEU(...).corpus_score(hypotheses, references)`),
/// reimplemented step for step so that scores agree with sacrebleu to floating-point rounding.
///
/// Defaults are sacrebleu's: the `13a` tokenizer, case-sensitive, n-grams up to order 4, `exp` smoothing
/// (mteval-v13a's: each order with no match gets precision `100 / (2^k * total)`, `k` counting such
/// orders), no effective order. A corpus score sums the sufficient statistics of every segment (hypothesis
/// length, closest reference length, matched and total n-grams per order) before computing
/// `BP * exp(mean(log p_n))`, on the 0–100 scale sacrebleu reports.
public struct BLEU: Sendable {
    /// A sacrebleu tokenizer.
    public enum Tokenizer: String, Sendable, CaseIterable {
        /// `13a` (mteval-v13a): unescapes a few HTML entities, splits off punctuation and symbols, splits
        /// `.` and `,` unless between digits and `-` after a digit.
        case thirteenA = "13a"
        /// `char`: every code point is a token (whitespace disappears).
        case char
    }

    /// sacrebleu's smoothing methods.
    public enum Smoothing: String, Sendable, CaseIterable {
        case none, floor, exp
        case addK = "add-k"

        /// sacrebleu's `SMOOTH_DEFAULTS`.
        var defaultValue: Double? {
            switch self {
            case .floor: return 0.1
            case .addK: return 1
            case .none, .exp: return nil
            }
        }
    }

    /// The result of `corpus_score`: `score` (0–100) and the statistics it came from.
    public struct Score: Sendable, Equatable {
        public var score: Double
        /// Matched n-grams per order (`counts` in sacrebleu).
        public var counts: [Int]
        /// Hypothesis n-grams per order (`totals`).
        public var totals: [Int]
        /// Percent precision per order after smoothing; orders after the first with no n-grams stay 0.
        public var precisions: [Double]
        /// Brevity penalty.
        public var brevityPenalty: Double
        /// Total hypothesis tokens.
        public var systemLength: Int
        /// Total closest-reference tokens.
        public var referenceLength: Int
    }

    public var tokenizer: Tokenizer
    public var lowercase: Bool
    public var smoothing: Smoothing
    /// Overrides the smoothing method's default (`floor`: 0.1, `add-k`: 1).
    public var smoothValue: Double?
    public var maxNgramOrder: Int
    /// Average only over the n-gram orders the hypotheses reach (sacrebleu's sentence-level setting).
    public var effectiveOrder: Bool

    public init(tokenizer: Tokenizer = .thirteenA, lowercase: Bool = false, smoothing: Smoothing = .exp,
                smoothValue: Double? = nil, maxNgramOrder: Int = 4, effectiveOrder: Bool = false) {
        precondition(maxNgramOrder >= 1, "maxNgramOrder must be positive")
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.smoothing = smoothing
        self.smoothValue = smoothValue
        self.maxNgramOrder = maxNgramOrder
        self.effectiveOrder = effectiveOrder
    }

    /// `corpus_score(hypotheses, references)`: `references` holds reference streams, each aligned with
    /// `hypotheses` (`[golds]` for one reference per segment).
    public func corpusScore(hypotheses: [String], references: [[String]]) throws(MetricError) -> Score {
        guard !hypotheses.isEmpty else { throw .empty(metric: "bleu") }
        guard !references.isEmpty else { throw .noReferences }
        for stream in references where stream.count != hypotheses.count {
            throw .lengthMismatch(predictions: hypotheses.count, golds: stream.count)
        }
        var stats = [Int](repeating: 0, count: 2 + 2 * maxNgramOrder)
        for (i, hypothesis) in hypotheses.enumerated() {
            let segment = segmentStatistics(hypothesis, references: references.map { $0[i] })
            for k in stats.indices { stats[k] += segment[k] }
        }
        return BLEU.computeBLEU(correct: Array(stats[2..<(2 + maxNgramOrder)]),
                                total: Array(stats[(2 + maxNgramOrder)...]),
                                systemLength: stats[0], referenceLength: stats[1], smoothing: smoothing,
                                smoothValue: smoothValue, effectiveOrder: effectiveOrder, maxNgramOrder: maxNgramOrder)
    }

    /// The tokenized form of one segment as sacrebleu produces it (`_preprocess_segment`: optional
    /// lowercasing, `rstrip`, the tokenizer), tokens joined by single spaces for `13a` and by the
    /// tokenizer's own spacing for `char`.
    public func tokenizedSegment(_ segment: String) -> String {
        PythonText.string(preprocess(PythonText.codePoints(segment)))
    }

    /// The tokens of one segment as BLEU counts them (`line.split()` of the tokenized segment).
    public func tokens(_ segment: String) -> [String] {
        PythonText.splitWhitespace(preprocess(PythonText.codePoints(segment))).map(PythonText.string)
    }

    // MARK: - Statistics

    private func preprocess(_ segment: PythonText.CodePoints) -> PythonText.CodePoints {
        let text = lowercase ? PythonText.lower(segment) : segment
        let line = PythonText.rstrip(text)
        switch tokenizer {
        case .thirteenA: return BLEU.tokenize13a(line)
        case .char: return BLEU.tokenizeChar(line)
        }
    }

    /// `[hyp_len, ref_len, correct_1...correct_N, total_1...total_N]` for one segment.
    private func segmentStatistics(_ hypothesis: String, references: [String]) -> [Int] {
        var vocabulary = [PythonText.CodePoints: Int]()
        func ids(_ segment: String) -> [Int] {
            PythonText.splitWhitespace(preprocess(PythonText.codePoints(segment))).map { token in
                if let id = vocabulary[token] { return id }
                let id = vocabulary.count
                vocabulary[token] = id
                return id
            }
        }
        var referenceCounts = [[Int]: Int]()
        var referenceLengths = [Int]()
        for (r, reference) in references.enumerated() {
            let tokens = ids(reference)
            referenceLengths.append(tokens.count)
            let counts = ngramCounts(tokens)
            if r == 0 {
                referenceCounts = counts
            } else {
                for (ngram, count) in counts { referenceCounts[ngram] = max(referenceCounts[ngram] ?? 0, count) }
            }
        }
        let hypothesisTokens = ids(hypothesis)
        var correct = [Int](repeating: 0, count: maxNgramOrder)
        var total = correct
        for (ngram, count) in ngramCounts(hypothesisTokens) {
            let n = ngram.count - 1
            total[n] += count
            if let matched = referenceCounts[ngram] { correct[n] += min(count, matched) }
        }
        let referenceLength = BLEU.closestReferenceLength(hypothesisTokens.count, referenceLengths)
        return [hypothesisTokens.count, referenceLength] + correct + total
    }

    private func ngramCounts(_ tokens: [Int]) -> [[Int]: Int] {
        var counts = [[Int]: Int]()
        for n in 1...maxNgramOrder where tokens.count >= n {
            for i in 0...(tokens.count - n) { counts[Array(tokens[i..<(i + n)]), default: 0] += 1 }
        }
        return counts
    }

    /// The reference length closest to the hypothesis length, the shorter one on a tie.
    static func closestReferenceLength(_ hypothesisLength: Int, _ referenceLengths: [Int]) -> Int {
        var closestDifference = -1, closestLength = -1
        for length in referenceLengths {
            let difference = abs(hypothesisLength - length)
            if closestDifference == -1 || difference < closestDifference {
                closestDifference = difference
                closestLength = length
            } else if difference == closestDifference, length < closestLength {
                closestLength = length
            }
        }
        return closestLength
    }

    /// sacrebleu's `BLEU.compute_bleu` on aggregated statistics.
    static func computeBLEU(correct: [Int], total: [Int], systemLength: Int, referenceLength: Int,
                            smoothing: Smoothing, smoothValue: Double?, effectiveOrder: Bool,
                            maxNgramOrder: Int) -> Score {
        let value = smoothValue ?? smoothing.defaultValue ?? 0
        var brevityPenalty = 1.0
        if systemLength < referenceLength {
            brevityPenalty = systemLength > 0 ? exp(1 - Double(referenceLength) / Double(systemLength)) : 0.0
        }
        var precisions = [Double](repeating: 0, count: maxNgramOrder)
        func result(_ score: Double) -> Score {
            Score(score: score, counts: correct, totals: total, precisions: precisions,
                  brevityPenalty: brevityPenalty, systemLength: systemLength, referenceLength: referenceLength)
        }
        if !correct.contains(where: { $0 != 0 }) { return result(0.0) }

        var matched = correct.map(Double.init), counted = total.map(Double.init)
        var smoothMteval = 1.0
        var order = maxNgramOrder
        for n in 1...maxNgramOrder {
            if smoothing == .addK, n > 1 {
                matched[n - 1] += value
                counted[n - 1] += value
            }
            if counted[n - 1] == 0 { break }
            if effectiveOrder { order = n }
            if matched[n - 1] == 0 {
                if smoothing == .exp {
                    smoothMteval *= 2
                    precisions[n - 1] = 100.0 / (smoothMteval * counted[n - 1])
                } else if smoothing == .floor {
                    precisions[n - 1] = 100.0 * value / counted[n - 1]
                }
            } else {
                precisions[n - 1] = 100.0 * matched[n - 1] / counted[n - 1]
            }
        }
        var logSum = 0.0
        for p in precisions[..<order] { logSum += p == 0 ? -9_999_999_999 : log(p) }
        return result(brevityPenalty * exp(logSum / Double(order)))
    }

    // MARK: - Tokenizers

    private static let skipped = PythonText.codePoints("<skipped>")
    private static let hyphenNewline = PythonText.codePoints("-\n")
    private static let entities: [(PythonText.CodePoints, PythonText.CodePoints)] = [
        ("&quot;", "\""), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"),
    ].map { (PythonText.codePoints($0.0), PythonText.codePoints($0.1)) }

    /// sacrebleu's `Tokenizer13a` followed by `TokenizerRegexp`, returning tokens joined by one space.
    static func tokenize13a(_ input: PythonText.CodePoints) -> PythonText.CodePoints {
        var line = PythonText.replace(input, skipped, with: [])
        line = PythonText.replace(line, hyphenNewline, with: [])
        line = PythonText.replace(line, ["\n"], with: [" "])
        if line.contains("&") {
            for (entity, text) in entities { line = PythonText.replace(line, entity, with: text) }
        }
        line = [" "] + line + [" "]

        // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
        var spaced = PythonText.CodePoints()
        spaced.reserveCapacity(line.count * 2)
        for c in line {
            if isSplitSymbol(c) { spaced += [" ", c, " "] } else { spaced.append(c) }
        }
        // ([^0-9])([\.,]) -> "\1 \2 "
        spaced = substitutePairs(spaced, { !isDigit($0) && isPeriodOrComma($1) }, { [$0, " ", $1, " "] })
        // ([\.,])([^0-9]) -> " \1 \2"
        spaced = substitutePairs(spaced, { isPeriodOrComma($0) && !isDigit($1) }, { [" ", $0, " ", $1] })
        // ([0-9])(-) -> "\1 \2 "
        spaced = substitutePairs(spaced, { isDigit($0) && $1 == "-" }, { [$0, " ", $1, " "] })

        var out = PythonText.CodePoints()
        for (i, token) in PythonText.splitWhitespace(spaced).enumerated() {
            if i > 0 { out.append(" ") }
            out += token
        }
        return out
    }

    /// sacrebleu's `TokenizerChar`: the code points joined by spaces.
    static func tokenizeChar(_ line: PythonText.CodePoints) -> PythonText.CodePoints {
        var out = PythonText.CodePoints()
        out.reserveCapacity(line.count * 2)
        for (i, c) in line.enumerated() {
            if i > 0 { out.append(" ") }
            out.append(c)
        }
        return out
    }

    /// `re.sub` of a two-code-point pattern: matches scanned left to right without overlap.
    private static func substitutePairs(_ s: PythonText.CodePoints,
                                        _ matches: (Unicode.Scalar, Unicode.Scalar) -> Bool,
                                        _ replacement: (Unicode.Scalar, Unicode.Scalar) -> PythonText.CodePoints)
        -> PythonText.CodePoints {
        var out = PythonText.CodePoints()
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, matches(s[i], s[i + 1]) {
                out += replacement(s[i], s[i + 1])
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
    private static func isPeriodOrComma(_ c: Unicode.Scalar) -> Bool { c == "." || c == "," }

    /// The class `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
    private static func isSplitSymbol(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: return true
        default: return false
        }
    }
}
