import Foundation
import KondateModel
import Testing

@Suite struct ScoringTests {
    static let config = ModelConfig(arch: .llama, vocabSize: 97, hidden: 32, ffn: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 24)

    /// The score's loss is the training loss of the same sequence (the kernel's cross-entropy), and each
    /// log-probability is a log-softmax of the logits computed independently here in double precision.
    @Test func scoreMatchesTheTrainingLossAndTheLogits() throws {
        let model = try Transformer(config: Self.config)
        model.initialize(seed: 3)
        let tokens: [Int32] = (0..<12).map { Int32(($0 * 37 + 5) % 97) }
        let score = try model.score(tokens)
        #expect(score.logprobs.count == tokens.count - 1)
        let logits = Array(model.logits!)
        for i in 0..<(tokens.count - 1) {
            let row = logits[(i * 97)..<((i + 1) * 97)].map(Double.init)
            let lse = log(row.map { exp($0) }.reduce(0, +))
            #expect(abs(score.logprobs[i] - (row[Int(tokens[i + 1])] - lse)) < 1e-9)
        }
        let trained = try #require(try model.forward(tokens: Array(tokens.dropLast()), targets: Array(tokens.dropFirst()), batch: 1, seq: tokens.count - 1))
        #expect(abs(Double(trained.loss) - score.loss) < 1e-5)
        #expect(throws: ModelError.self) { try model.score([1]) }
    }

    /// Greedy generation picks the argmax of the cached decoding's logits, which equal a full forward
    /// pass over the sequence so far; it stops at the end-of-sequence id and at the last position.
    @Test func greedyGenerationFollowsTheFullForwardPass() throws {
        let model = try Transformer(config: Self.config)
        model.initialize(seed: 5)
        var sampler = Sampler()
        let prompt: [Int32] = [4, 8, 15]
        let session = DecodingSession(model: model)
        let generated = try session.generate(prompt: prompt, maxNewTokens: 6, sampler: &sampler, endOfSequence: nil)
        #expect(generated.count == 6)
        var sequence = prompt
        for next in generated {
            try model.forward(tokens: sequence, batch: 1, seq: sequence.count)
            let last = Array(model.logits!)[((sequence.count - 1) * 97)..<(sequence.count * 97)]
            #expect(Int32(last.indices.max { last[$0] < last[$1] }! - last.startIndex) == next)
            sequence.append(next)
        }
        let stopped = try session.generate(prompt: prompt, maxNewTokens: 6, sampler: &sampler, endOfSequence: generated[2])
        #expect(stopped == Array(generated.prefix(2)))
        // 24 positions: a prompt of 24 is followed by the one token its last position predicts; of 23, by two.
        for (length, expected) in [(24, 1), (23, 2)] {
            let out = try session.generate(prompt: (0..<length).map { Int32($0) }, maxNewTokens: 6, sampler: &sampler, endOfSequence: nil)
            #expect(out.count == expected)
        }
    }
}
