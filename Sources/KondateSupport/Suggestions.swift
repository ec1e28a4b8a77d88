/// "Did you mean" support: the closest candidate within a small edit distance.
public enum Suggestions {
    /// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), on Unicode scalars.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let s = Array(a.unicodeScalars), t = Array(b.unicodeScalars)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        var prev2 = [Int](repeating: 0, count: t.count + 1)
        var prev = Array(0...t.count)
        var cur = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            cur[0] = i
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                var v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] { v = min(v, prev2[j - 2] + 1) }
                cur[j] = v
            }
            (prev2, prev, cur) = (prev, cur, prev2)
        }
        return prev[t.count]
    }

    /// The best candidate for `word`: an exact case-insensitive match first, then the nearest within
    /// max(2, length/3) edits; ties go to the earlier candidate so results are stable.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        if let same = candidates.first(where: { $0.lowercased() == word.lowercased() }) { return same }
        let limit = max(2, word.count / 3)
        var best: (String, Int)?
        for candidate in candidates {
            let d = editDistance(word.lowercased(), candidate.lowercased())
            if d <= limit, d < (best?.1 ?? Int.max) { best = (candidate, d) }
        }
        if best == nil {
            // A separator slip ("seq-len" for "seq_len", "kvheads" for "kv_heads").
            let squash = { (s: String) in s.lowercased().filter { $0 != "_" && $0 != "-" } }
            best = candidates.first { squash($0) == squash(word) }.map { ($0, 0) }
        }
        return best?.0
    }
}
