/// fuzzywuzzy 0.18.0's `fuzz.token_sort_ratio` with python-Levenshtein installed, the scorer behind
/// llm-jp-eval's `char_f1` (`fuzz.token_sort_ratio(y_pred, y_true) / 100.0`).
///
/// The steps, each on code points as in Python:
/// 1. `full_process(s, force_ascii=True)`: delete U+0080–U+00FF (fuzzywuzzy's "asciidammit" on Python 3
///    removes exactly that Latin-1 range, so `café` becomes `caf` while Japanese is kept), replace every
///    code point that is not `\w` with a space, `str.lower()`, `str.strip()`.
/// 2. Split on whitespace, sort the tokens by code point, join them with one space.
/// 3. `fuzz.ratio` of the two sorted strings: 100 when they are equal (so two strings that both process
///    to nothing score 100), 0 when one of them is empty, otherwise
///    `int(round(100 * Levenshtein.ratio(a, b)))` where `Levenshtein.ratio` is the normalized Indel
///    similarity `1 - indel_distance / (len(a) + len(b))` and `round` is Python's round-half-to-even.
public enum FuzzyMatch {
    /// `fuzz.token_sort_ratio(prediction, gold)`: an integer from 0 to 100.
    public static func tokenSortRatio(_ a: String, _ b: String) -> Int {
        ratio(processAndSort(PythonText.codePoints(a)), processAndSort(PythonText.codePoints(b)))
    }

    /// `fuzz.token_sort_ratio(a, b) / 100.0`, llm-jp-eval's per-pair `char_f1`.
    public static func charF1(_ prediction: String, _ gold: String) -> Double {
        Double(tokenSortRatio(prediction, gold)) / 100.0
    }

    /// `utils.full_process(s, force_ascii=True)`.
    public static func fullProcess(_ s: String) -> String {
        PythonText.string(fullProcess(PythonText.codePoints(s)))
    }

    /// fuzzywuzzy's `_process_and_sort(s, force_ascii=True)`: the processed tokens, sorted and joined.
    public static func processAndSort(_ s: String) -> String {
        PythonText.string(processAndSort(PythonText.codePoints(s)))
    }

    static func fullProcess(_ s: PythonText.CodePoints) -> PythonText.CodePoints {
        let ascii = s.filter { !(0x80...0xFF).contains($0.value) }
        let words = ascii.map { PythonText.isWord($0) ? $0 : " " as Unicode.Scalar }
        return PythonText.strip(PythonText.lower(words))
    }

    static func processAndSort(_ s: PythonText.CodePoints) -> PythonText.CodePoints {
        let tokens = PythonText.splitWhitespace(fullProcess(s)).sorted(by: PythonText.less)
        var joined = PythonText.CodePoints()
        for (i, token) in tokens.enumerated() {
            if i > 0 { joined.append(" ") }
            joined += token
        }
        return PythonText.strip(joined)
    }

    /// `fuzz.ratio` on already processed strings (equal → 100, one empty → 0, else the rounded Indel
    /// similarity in percent).
    static func ratio(_ a: PythonText.CodePoints, _ b: PythonText.CodePoints) -> Int {
        if a == b { return 100 }
        if a.isEmpty || b.isEmpty { return 0 }
        let total = a.count + b.count
        let similarity = 1.0 - Double(indelDistance(a, b)) / Double(total)
        return Int((100 * similarity).rounded(.toNearestOrEven))
    }

    /// The Indel distance (insertions and deletions only): `len(a) + len(b) - 2 * LCS(a, b)`.
    static func indelDistance(_ a: PythonText.CodePoints, _ b: PythonText.CodePoints) -> Int {
        a.count + b.count - 2 * longestCommonSubsequence(a, b)
    }

    static func longestCommonSubsequence(_ a: PythonText.CodePoints, _ b: PythonText.CodePoints) -> Int {
        let (outer, inner) = a.count >= b.count ? (a, b) : (b, a)
        if inner.isEmpty { return 0 }
        var previous = [Int](repeating: 0, count: inner.count + 1)
        var current = previous
        for x in outer {
            for j in 1...inner.count {
                current[j] = x == inner[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        return previous[inner.count]
    }
}
