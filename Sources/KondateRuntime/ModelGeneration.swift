import Foundation
import KondateEval
import KondateModel
import KondatePlan
import KondateTokenizers

/// Text generation with a Kondate model and its tokenizer, for `kondate eval`, `kondate generate` and
/// the eval stages of `kondate run`.
///
/// - Text prompts are encoded without special tokens and start with the BOS token when `bos` is set
///   (see `load(directory:)`); token prompts are used as given.
/// - Generation stops at `endOfSequence` or after `maxNewTokens` tokens.
/// - When prompt and answer would not fit the model's positions, the prompt keeps its first token when
///   that is BOS and its last `maxPositions − maxNewTokens` tokens otherwise; `truncatedPrompts` counts it.
public final class ModelTextGenerator: TextGenerator {
    public let model: Transformer
    public let tokenizer: any Tokenizer
    public let bos: Int32?
    public let endOfSequence: Int32?
    public var sampler: Sampler
    public private(set) var truncatedPrompts = 0
    let session: DecodingSession

    public init(model: Transformer, tokenizer: any Tokenizer, bos: Int32?, endOfSequence: Int32?, sampler: Sampler = Sampler()) {
        self.model = model
        self.tokenizer = tokenizer
        self.bos = bos
        self.endOfSequence = endOfSequence
        self.sampler = sampler
        session = DecodingSession(model: model)
    }

    /// The model of a Hugging Face directory with its tokenizer. BOS starts text prompts when the
    /// directory's tokenizer adds it (`HFModel.addsBeginningOfSequence`: Kondate's exports do whenever
    /// the recipe has a BOS token, since tuning starts every example with it).
    public static func load(directory: String, sampler: Sampler = Sampler()) throws -> ModelTextGenerator {
        let model = try ComputeBackend.cpuFP32.loadModel(directory: directory)
        let tokenizer = try TokenizerLoader.load(path: directory)
        var bos: Int32?
        if HFModel.addsBeginningOfSequence(directory: directory) {
            bos = try HFModel.beginningOfSequenceID(directory: directory) ?? tokenizer.specialIDs["bos"]
        }
        return ModelTextGenerator(model: model, tokenizer: tokenizer, bos: bos,
                                  endOfSequence: try HFModel.endOfSequenceID(directory: directory), sampler: sampler)
    }

    public func generate(prompt: String, maxNewTokens: Int) throws -> String {
        try generate(tokens: (bos.map { [$0] } ?? []) + tokenizer.encode(prompt), maxNewTokens: maxNewTokens)
    }

    /// The generated continuation of `tokens`, decoded.
    public func generate(tokens: [Int32], maxNewTokens: Int) throws -> String {
        var ids = tokens
        let room = max(1, session.capacity - maxNewTokens)
        if ids.count > room {
            let keepFirst = bos != nil && ids.first == bos && room > 1
            ids = (keepFirst ? [ids[0]] : []) + ids.suffix(keepFirst ? room - 1 : room)
            truncatedPrompts += 1
        }
        return tokenizer.decode(try session.generate(prompt: ids, maxNewTokens: maxNewTokens, sampler: &sampler, endOfSequence: endOfSequence))
    }
}
