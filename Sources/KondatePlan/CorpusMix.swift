import Foundation
import KondateRecipe
import KondateSupport

/// How many training tokens each source supplies, and how many passes over it that is.
///
/// Budgets are taken first; the remaining tokens are split over the other sources in proportion to
/// their `weight` (or, without one, their size `tokens`: the natural mix). Shares are token-level.
/// Megatron's blend weights are per sample, which is the same thing for fixed-length samples.
public struct CorpusMix: Sendable {
    public struct Share: Sendable {
        public var source: String
        public var language: String?
        public var available: Int?
        public var drawn: Double
        public var fraction: Double
        public var epochs: Double?
        public var maxEpochs: Double?
    }

    public var shares: [Share]
    public var trainingTokens: Int

    public init(corpus: Recipe.Corpus, trainingTokens: Int, diagnostics: inout DiagnosticSet, tree: RNode) {
        self.trainingTokens = trainingTokens
        // Sums in Double: budgets are each below 9e18 but their sum need not be.
        let budgets = corpus.sources.compactMap(\.budget).reduce(0.0) { $0 + Double($1) }
        let remaining = Double(trainingTokens) - budgets
        let weighted = corpus.sources.filter { $0.budget == nil }
        let weightOf = { (s: Recipe.Source) -> Double in s.weight ?? Double(s.tokens ?? 0) }
        let totalWeight = weighted.map(weightOf).reduce(0, +)
        if budgets > Double(trainingTokens) {
            // The mixture cannot draw more than the training tokens: refused here, as the corpus.mix stage would.
            let first = corpus.sources.first { $0.budget != nil }.map { "corpus.sources.\($0.name).budget" } ?? "corpus.sources"
            diagnostics.error(.corpusBudget,
                              "corpus budgets sum to \(Format.grouped(Int(saturating: budgets))) tokens, more than the \(Format.grouped(trainingTokens)) training tokens; lower the budgets or train on more tokens",
                              at: tree.diagnosticLocation(first))
        } else if remaining > 0, totalWeight <= 0 {
            diagnostics.error(.corpusBudget,
                              "pretraining needs \(Format.grouped(trainingTokens)) tokens but corpus budgets supply only \(Format.grouped(Int(saturating: budgets))) and no source has a weight for the remaining \(Format.grouped(Int(saturating: remaining))); raise the budgets or give a source a weight",
                              at: tree.keyLocation("corpus.sources") ?? tree.keyLocation("corpus"))
        }
        shares = corpus.sources.map { s in
            let drawn: Double
            if let b = s.budget { drawn = Double(b) } else if totalWeight > 0 { drawn = max(remaining, 0) * weightOf(s) / totalWeight } else { drawn = 0 }
            let epochs = s.tokens.map { drawn / Double($0) }
            return Share(source: s.name, language: s.language, available: s.tokens, drawn: drawn,
                         fraction: trainingTokens > 0 ? drawn / Double(trainingTokens) : 0, epochs: epochs, maxEpochs: s.maxEpochs)
        }
        for share in shares {
            if let e = share.epochs, let cap = share.maxEpochs, e > cap {
                let path = "corpus.sources.\(share.source).max_epochs"
                diagnostics.warning(.corpusEpochs,
                                    "source '\(share.source)' is drawn \(String(format: "%.2f", e)) epochs, over its max_epochs \(Format.number(cap))",
                                    at: tree.at(path)?.location ?? tree.keyLocation("corpus.sources.\(share.source)"))
            }
        }
    }
}
