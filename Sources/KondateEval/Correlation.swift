import Foundation

/// The correlation coefficients of `scipy.stats` and llm-jp-eval's number reading for them.
public enum Correlation {
    /// llm-jp-eval's `parse_float` for predictions: every code point other than the ASCII digits and `.`
    /// is deleted (signs, exponents, full-width digits and thousands separators included: `-3` reads as
    /// 3, `1e3` as 13, `4,000` as 4000), and what is left is read with Python's `float`; when that fails
    /// (nothing left, two dots, a lone `.`) the prediction counts as **-2.0**, a value outside JSTS's
    /// 0–5 range.
    public static func parseFloat(_ text: String) -> Double {
        let kept = text.unicodeScalars.filter { ($0.value >= 0x30 && $0.value <= 0x39) || $0 == "." }
        return PythonText.parseFloat(PythonText.string(Array(kept))) ?? -2.0
    }

    /// `scipy.stats.pearsonr(x, y).statistic`: NaN when either input is constant or contains NaN or an
    /// infinity, exactly ±1 for two points. Needs at least two pairs (scipy raises otherwise).
    public static func pearson(_ x: [Double], _ y: [Double]) throws(MetricError) -> Double {
        guard x.count == y.count else { throw .lengthMismatch(predictions: y.count, golds: x.count) }
        guard x.count >= 2 else { throw .tooFewPairs(metric: "pearson", count: x.count) }
        if isConstant(x) || isConstant(y) { return .nan }
        let n = Double(x.count)
        let xMean = x.reduce(0, +) / n, yMean = y.reduce(0, +) / n
        let xm = x.map { $0 - xMean }, ym = y.map { $0 - yMean }
        let xMax = xm.map(abs).max()!, yMax = ym.map(abs).max()!
        let xNorm = xMax * norm(xm.map { $0 / xMax }), yNorm = yMax * norm(ym.map { $0 / yMax })
        var r = 0.0
        for i in x.indices { r += (xm[i] / xNorm) * (ym[i] / yNorm) }
        if r.isNaN { return .nan }
        r = min(max(r, -1), 1)
        return x.count == 2 ? r.rounded(.toNearestOrEven) : r
    }

    /// `scipy.stats.spearmanr(x, y).statistic`: the Pearson correlation (`numpy.corrcoef`) of the ranks,
    /// ties sharing their average rank. NaN for fewer than two pairs, for a constant input and for input
    /// containing NaN.
    public static func spearman(_ x: [Double], _ y: [Double]) throws(MetricError) -> Double {
        guard x.count == y.count else { throw .lengthMismatch(predictions: y.count, golds: x.count) }
        if x.count <= 1 { return .nan }
        if isConstant(x) || isConstant(y) { return .nan }
        if x.contains(where: \.isNaN) || y.contains(where: \.isNaN) { return .nan }
        let rx = averageRanks(x), ry = averageRanks(y)
        let n = Double(x.count)
        let mx = rx.reduce(0, +) / n, my = ry.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in rx.indices {
            let dx = rx[i] - mx, dy = ry[i] - my
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        }
        let denominator = n - 1
        let r = (sxy / denominator) / (sxx / denominator).squareRoot() / (syy / denominator).squareRoot()
        return r.isNaN ? .nan : min(max(r, -1), 1)
    }

    /// `scipy.stats.rankdata(values, method="average")`: ranks from 1, tied values sharing the mean of
    /// their ranks.
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count, values[order[end + 1]] == values[order[start]] { end += 1 }
            let rank = Double(start + end + 2) / 2
            for k in start...end { ranks[order[k]] = rank }
            start = end + 1
        }
        return ranks
    }

    /// scipy's exact-constancy test: every element equal to the first (NaN never is).
    private static func isConstant(_ values: [Double]) -> Bool {
        values.allSatisfy { $0 == values[0] }
    }

    private static func norm(_ v: [Double]) -> Double {
        v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
}
