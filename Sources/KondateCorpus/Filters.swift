import Foundation
import KondateRecipe
import KondateSupport

/// A document filter from the recipe. Text filters judge a document alone (and run in parallel);
/// deduplicators remember what they kept (and run in document order, so results are deterministic).
public enum CorpusFilter: Sendable {
    case text(name: String, keep: @Sendable (String) -> Bool)
    case exactDedup
    case minHash(MinHashParameters)

    public var name: String {
        switch self {
        case let .text(name, _): return name
        case .exactDedup: return "dedup_exact"
        case .minHash: return "dedup_minhash"
        }
    }
}

/// The filter registry: one entry per filter name of the recipe schema (`RecipeSchema.filter`).
/// Adding a filter is a schema variant plus one entry here.
public enum FilterRegistry {
    static func docLength(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let lo = p["min_chars"]?.int ?? 0, hi = p["max_chars"]?.int ?? Int.max
        return .text(name: "doc_length") { text in
            let n = text.unicodeScalars.count
            return n >= lo && n <= hi
        }
    }

    static func japaneseRatio(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let min = p["min"]?.double ?? 0
        return .text(name: "japanese_ratio") { text in
            (TextStatistics.ratio(text, TextStatistics.isJapanese) ?? -1) >= min
        }
    }

    static func hiraganaRatio(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let min = p["min"]?.double ?? 0
        return .text(name: "hiragana_ratio") { text in
            (TextStatistics.ratio(text, TextStatistics.isHiragana) ?? -1) >= min
        }
    }

    static func symbolRatio(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let max = p["max"]?.double ?? 1
        return .text(name: "symbol_ratio") { text in
            let c = TextStatistics.counts(text)
            return c.nonWhitespace == 0 || Double(c.symbols) / Double(c.nonWhitespace) <= max
        }
    }

    static func linkRatio(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let max = p["max"]?.double ?? 1
        return .text(name: "link_ratio") { TextStatistics.linkCharacterRatio($0) <= max }
    }

    static func lineLength(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let lo = p["min_mean"]?.double ?? 0, hi = p["max_mean"]?.double ?? .infinity
        return .text(name: "line_length") { text in
            let lengths = TextStatistics.lineLengths(text)
            guard !lengths.isEmpty else { return false }
            let mean = Double(lengths.reduce(0, +)) / Double(lengths.count)
            return mean >= lo && mean <= hi
        }
    }

    static func sentenceLength(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let max = p["max_mean"]?.double ?? .infinity
        return .text(name: "sentence_length") { TextStatistics.meanSentenceLength($0) <= max }
    }

    static func repeatedLines(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let max = p["max_ratio"]?.double ?? 1
        return .text(name: "repeated_lines") { text in
            TextStatistics.repeatedRatio(text.split(separator: "\n", omittingEmptySubsequences: true)) <= max
        }
    }

    static func repeatedParagraphs(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let max = p["max_ratio"]?.double ?? 1
        return .text(name: "repeated_paragraphs") { TextStatistics.repeatedRatio(TextStatistics.paragraphs($0)) <= max }
    }

    static func compressionRatio(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let lo = p["min"]?.double ?? 0, hi = p["max"]?.double ?? 1
        return .text(name: "compression_ratio") { text in
            let r = TextStatistics.compressionRatio(text)
            return r >= lo && r <= hi
        }
    }

    static func ngWords(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        guard let pathNode = p["path"], let path = pathNode.string else { throw KondateError(.inputData, "ng_words needs a 'path'") }
        let resolved = PathCheck.resolve(path, relativeTo: pathNode.location)
        guard let data = FileManager.default.contents(atPath: resolved), let list = String(data: data, encoding: .utf8) else {
            throw KondateError(.inputData, "ng_words: cannot read the word list '\(resolved)' (it must be a UTF-8 file, one word per line)",
                              at: pathNode.location)
        }
        let words = list.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let maxHits = p["max_hits"]?.int ?? 3
        let matcher = WordMatcher(words: words)
        return .text(name: "ng_words") { matcher.hits(in: $0, stoppingAfter: maxHits) <= maxHits }
    }

    static func code(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        let maxLine = p["max_line_length"]?.int ?? 1000
        let maxMean = p["max_mean_line_length"]?.double ?? 100
        let minAlnum = p["min_alnum_fraction"]?.double ?? 0.25
        return .text(name: "code") { text in
            let lengths = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.unicodeScalars.count }
            guard let longest = lengths.max(), longest <= maxLine else { return false }
            let mean = Double(lengths.reduce(0, +)) / Double(max(1, lengths.count))
            guard mean <= maxMean else { return false }
            let total = text.unicodeScalars.count
            let alnum = text.unicodeScalars.reduce(0) { $0 + (($1.properties.isAlphabetic || $1.properties.numericType != nil) ? 1 : 0) }
            return total > 0 && Double(alnum) / Double(total) >= minAlnum
        }
    }

    static func dedupMinhash(_ p: RNode, _ seed: Int) throws -> CorpusFilter {
        .minHash(MinHashParameters(shingle: p["shingle"]?.int ?? 5, permutations: p["permutations"]?.int ?? 128,
                                   bands: p["bands"]?.int ?? 16, rows: p["rows"]?.int ?? 8,
                                   threshold: p["threshold"]?.double ?? 0.8, seed: UInt64(seed)))
    }

    /// Builds a recipe filter; `seed` is the recipe seed (dedup hashing).
    public static func make(_ filter: Recipe.Filter, seed: Int) throws -> CorpusFilter {
        let p = filter.parameters
        switch filter.name {
        case "doc_length": return try docLength(p, seed)
        case "japanese_ratio": return try japaneseRatio(p, seed)
        case "hiragana_ratio": return try hiraganaRatio(p, seed)
        case "symbol_ratio": return try symbolRatio(p, seed)
        case "link_ratio": return try linkRatio(p, seed)
        case "line_length": return try lineLength(p, seed)
        case "sentence_length": return try sentenceLength(p, seed)
        case "repeated_lines": return try repeatedLines(p, seed)
        case "repeated_paragraphs": return try repeatedParagraphs(p, seed)
        case "compression_ratio": return try compressionRatio(p, seed)
        case "ng_words": return try ngWords(p, seed)
        case "code": return try code(p, seed)
        case "dedup_exact": return .exactDedup
        case "dedup_minhash": return try dedupMinhash(p, seed)
        default: throw KondateError(.inputData, "filter '\(filter.name)' has no implementation", at: p.location)
        }
    }

    /// Every filter name `make` accepts (a test checks it equals the schema's list).
    public static let names = ["doc_length", "japanese_ratio", "hiragana_ratio", "symbol_ratio", "link_ratio", "line_length",
                               "sentence_length", "repeated_lines", "repeated_paragraphs", "compression_ratio", "ng_words", "code",
                               "dedup_exact", "dedup_minhash"]
}

/// Counts occurrences of any of a list of words (non-overlapping per word), for NG-word lists.
public struct WordMatcher: Sendable {
    let words: [[UInt8]]
    /// Words by first byte, to skip positions quickly.
    let byFirstByte: [[Int]]

    public init(words: [String]) {
        self.words = words.map { Array($0.utf8) }.filter { !$0.isEmpty }
        var table = [[Int]](repeating: [], count: 256)
        for (i, w) in self.words.enumerated() { table[Int(w[0])].append(i) }
        byFirstByte = table
    }

    public func hits(in text: String, stoppingAfter limit: Int = .max) -> Int {
        var count = 0
        var copy = text
        copy.withUTF8 { b in
            var i = 0
            while i < b.count {
                var advanced = false
                for w in byFirstByte[Int(b[i])] {
                    let word = words[w]
                    if i + word.count <= b.count, memcmp(b.baseAddress! + i, word, word.count) == 0 {
                        count += 1
                        i += word.count
                        advanced = true
                        break
                    }
                }
                if count > limit { return }
                if !advanced { i += 1 }
            }
        }
        return count
    }
}
