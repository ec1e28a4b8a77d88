import Foundation

/// How well a model predicts a sequence: what transformers computes with `labels=input_ids`.
public struct SequenceScore: Sendable, Equatable {
    /// `logprobs[i]` = log p(token[i+1] | token[0…i]), in double precision from the float logits.
    public var logprobs: [Double]
    /// The mean over positions 1…n−1 of −log p(token | previous tokens).
    public var loss: Double { -logprobs.reduce(0, +) / Double(max(1, logprobs.count)) }
}

extension Transformer {
    /// Scores `tokens` (at least 2) in one forward pass.
    public func score(_ tokens: [Int32]) throws(ModelError) -> SequenceScore {
        guard tokens.count >= 2 else { throw ModelError.invalidInput("need at least 2 tokens to score a next-token prediction (got \(tokens.count))") }
        try forward(tokens: tokens, batch: 1, seq: tokens.count)
        let v = config.vocabSize
        let logits = self.logits!
        return SequenceScore(logprobs: (0..<(tokens.count - 1)).map { i in
            let row = logits[(i * v)..<((i + 1) * v)]
            let m = Double(row.max()!)
            let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            return Double(row[row.startIndex + Int(tokens[i + 1])]) - lse
        })
    }
}
