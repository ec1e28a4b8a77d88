import Foundation
import KondateData
import KondateRecipe
import KondateSupport

/// Executes a recipe's tokenizer and corpus sections: the stages `corpus.prepare.<source>`,
/// `tokenizer`, `corpus.tokenize.<source>` and `corpus.mix` of the execution graph.
///
/// One directory per stage under `directory` (`kondate run` makes each a link into its content-addressed
/// store; the stage methods only read and write these paths):
///
///     corpus/prepared/<source>/<source>.jsonl       filtered documents (+ <source>.report.json)
///     tokenizer/tokenizer.json                      a trained tokenizer (a loaded one is read in place)
///     corpus/tokens/<source>/<source>.bin, .idx     Megatron indexed dataset, EOD after each document
///     corpus/mix/train.source.u16, .sample.i64, mixture.json
///
/// `run()` executes every stage in order; the stage methods (`prepare`, `prepareTokenizer`,
/// `tokenize`, `mixture`/`writeMixture`) execute one each.
public struct CorpusRun {
    public var recipe: Recipe
    public var directory: String
    public var threads: Int
    public var log: (String) -> Void

    public init(recipe: Recipe, directory: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                log: @escaping (String) -> Void = { _ in }) {
        self.recipe = recipe
        self.directory = directory
        self.threads = max(1, threads)
        self.log = log
    }

    public struct Result {
        public var filterReports: [FilterReport] = []
        public var tokenizerPath: String?
        public var tokenizer: (any Tokenizer)?
        public var tokenReports: [(source: String, documents: Int, tokens: Int, seconds: Double)] = []
        public var mixture: Mixture?
    }

    func path(_ parts: String...) -> String { ([directory] + parts).joined(separator: "/") }

    /// Input files of a source, with globs expanded; a pattern matching nothing names its recipe line.
    public func files(of source: Recipe.Source) throws -> [String] {
        try DocumentReader.expand(recipe: recipe, at: "corpus.sources.\(source.name).paths")
    }

    /// The directory of a stage's outputs, relative to the run directory.
    public static func stageDirectory(_ stage: String) -> String? {
        if stage == "tokenizer" { return "tokenizer" }
        if stage == "corpus.mix" { return "corpus/mix" }
        if stage.hasPrefix("corpus.prepare.") { return "corpus/prepared/" + stage.dropFirst("corpus.prepare.".count) }
        if stage.hasPrefix("corpus.tokenize.") { return "corpus/tokens/" + stage.dropFirst("corpus.tokenize.".count) }
        return nil
    }

    /// The prepared documents of a source.
    public func preparedFile(_ source: String) -> String { path("corpus", "prepared", source, "\(source).jsonl") }
    /// The Megatron dataset prefix of a source.
    public func tokensPrefix(_ source: String) -> String { path("corpus", "tokens", source, source) }
    /// The file a trained tokenizer is written to.
    public var trainedTokenizerFile: String { path("tokenizer", "tokenizer.json") }

    public func run() throws -> Result {
        guard let corpus = recipe.corpus else { throw CorpusError("the recipe has no corpus section") }
        var result = Result()
        for source in corpus.sources { result.filterReports.append(try prepare(source)) }
        let (file, tokenizer) = try prepareTokenizer()
        result.tokenizerPath = file
        result.tokenizer = tokenizer
        for source in corpus.sources {
            let started = Date()
            let (documents, tokens) = try tokenize(source, with: tokenizer)
            result.tokenReports.append((source.name, documents, tokens, Date().timeIntervalSince(started)))
        }
        if recipe.pretrain != nil {
            let mixture = try self.mixture()
            try writeMixture(mixture)
            result.mixture = mixture
        }
        return result
    }

    /// `corpus.prepare.<source>`: reads, filters and deduplicates a source into its prepared file.
    public func prepare(_ source: Recipe.Source) throws -> FilterReport {
        guard let onError = recipe.corpus?.onError else { throw CorpusError("the recipe has no corpus section") }
        let files = try files(of: source)
        log("corpus.prepare.\(source.name): \(files.count) file\(files.count == 1 ? "" : "s")")
        let output = preparedFile(source.name)
        let reportFile = path("corpus", "prepared", source.name, "\(source.name).report.json")
        var preparation = SourcePreparation(source: source, files: files, onError: onError, seed: recipe.seed, threads: threads)
        let recipe = self.recipe
        preparation.originPath = { recipe.portablePath($0) }
        let report = try preparation.run(output: output)
        try write(report.json, to: reportFile)
        if report.documentsOut == 0 {
            throw CorpusError("source '\(source.name)' has no documents left after reading and filtering (see \(reportFile))",
                              at: recipe.tree.keyLocation("corpus.sources.\(source.name)"))
        }
        return report
    }

    /// `tokenizer`: trains the recipe's tokenizer on the prepared sources, or loads the one it names;
    /// returns its file and the tokenizer, checked against the model's vocabulary.
    public func prepareTokenizer() throws -> (file: String, tokenizer: any Tokenizer) {
        var result = Result()
        let tokenizer = try prepareTokenizer(&result)
        try checkVocabulary(tokenizer)
        return (result.tokenizerPath ?? trainedTokenizerFile, tokenizer)
    }

    /// The tokenizer a finished `tokenizer` stage left (the trained file, or the recipe's).
    public func loadTokenizer() throws -> (file: String, tokenizer: any Tokenizer) {
        if let declared = recipe.tokenizer?.path {
            let location = recipe.tree.at("tokenizer.path")?.location
            let file = PathCheck.resolve(declared, relativeTo: location)
            do { return (file, try TokenizerLoader.load(path: file)) } catch let e as TokenizerError {
                throw CorpusError("tokenizer: \(e.description)", at: location)
            }
        }
        do { return (trainedTokenizerFile, try TokenizerLoader.load(path: trainedTokenizerFile)) } catch let e as TokenizerError {
            throw CorpusError("tokenizer: \(e.description)")
        }
    }

    /// `corpus.tokenize.<source>`: encodes the prepared documents, EOD after each, into the source's
    /// Megatron dataset.
    public func tokenize(_ source: Recipe.Source, with tokenizer: any Tokenizer) throws -> (documents: Int, tokens: Int) {
        let eod = try endOfDocumentID(tokenizer)
        let dtype = MegatronDType.optimal(vocabularySize: max(tokenizer.vocabularySize, recipe.model.vocabSize))
        try FileManager.default.createDirectory(atPath: path("corpus", "tokens", source.name), withIntermediateDirectories: true)
        let (documents, tokens) = try tokenize(preparedFile(source.name), with: tokenizer, eod: eod, into: tokensPrefix(source.name), dtype: dtype)
        log("corpus.tokenize.\(source.name): \(Format.grouped(documents)) documents, \(Format.grouped(tokens)) tokens")
        return (documents, tokens)
    }

    /// The pretraining mixture over the tokenized sources (computed; `writeMixture` is the
    /// `corpus.mix` stage's output).
    public func mixture() throws -> Mixture {
        guard let corpus = recipe.corpus else { throw CorpusError("the recipe has no corpus section") }
        guard let pretrain = recipe.pretrain else { throw CorpusError("the recipe has no pretrain section to mix for") }
        let sources = corpus.sources.map { s in
            MixtureSource(name: s.name, prefix: tokensPrefix(s.name), weight: s.weight, budget: s.budget, maxEpochs: s.maxEpochs)
        }
        return try Mixture(sources: sources, samples: pretrain.steps * pretrain.globalBatch, seqLen: recipe.model.seqLen,
                           heldOut: corpus.heldOut, seed: UInt64(recipe.seed))
    }

    /// `corpus.mix`: writes the mixture's sample index and report.
    public func writeMixture(_ mixture: Mixture) throws {
        try FileManager.default.createDirectory(atPath: path("corpus", "mix"), withIntermediateDirectories: true)
        try mixture.writeIndex(to: path("corpus", "mix", "train"))
        try write(mixture.reportJSON, to: path("corpus", "mix", "mixture.json"))
        log("corpus.mix: \(Format.grouped(mixture.count)) samples of \(recipe.model.seqLen + 1) tokens")
    }

    func write(_ json: JSON, to file: String) throws {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: file).deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((json.rendered() + "\n").utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
    }

    // MARK: Tokenizer

    func prepareTokenizer(_ result: inout Result) throws -> any Tokenizer {
        guard let spec = recipe.tokenizer else { throw CorpusError("the recipe has no tokenizer section") }
        if let declared = spec.path {
            let location = recipe.tree.at("tokenizer.path")?.location
            let file = PathCheck.resolve(declared, relativeTo: location)
            let tokenizer: any Tokenizer
            do { tokenizer = try TokenizerLoader.load(path: file) } catch let e as TokenizerError {
                throw CorpusError("tokenizer: \(e.description)", at: location)
            }
            if let vocab = spec.vocabSize, vocab != tokenizer.vocabularySize {
                throw CorpusError("tokenizer.vocab_size is \(vocab) but '\(file)' has \(tokenizer.vocabularySize) tokens; correct the recipe",
                                  at: recipe.tree.at("tokenizer.vocab_size")?.location ?? location)
            }
            log("tokenizer: loaded \(file) (\(tokenizer.vocabularySize) tokens)")
            result.tokenizerPath = file
            result.tokenizer = tokenizer
            return tokenizer
        }
        guard let train = spec.train else { throw CorpusError("tokenizer needs 'path' or 'train'") }
        guard train.algorithm == .bpe else {
            throw CorpusError("tokenizer.train.algorithm 'unigram' is not available: Kondate trains byte-level BPE; load a SentencePiece unigram .model with tokenizer.path",
                              at: recipe.tree.at("tokenizer.train.algorithm")?.location)
        }
        let texts = try trainingSample(sources: train.sources, bytes: train.sampleSize)
        let started = Date()
        let file = path("tokenizer", "tokenizer.json")
        let special = ["bos", "eos", "pad", "unk"].compactMap { spec.specialTokens[$0] } + spec.additionalSpecialTokens
        let tokenizer = try TokenizerTraining.trainByteLevelBPE(texts: texts, vocabularySize: train.vocabSize, minFrequency: train.minFrequency,
                                                               specialTokens: special, threads: threads, output: file)
        log("tokenizer: trained byte-level BPE, \(tokenizer.vocabularySize) tokens on \(Format.bytes(Double(texts.reduce(0) { $0 + $1.utf8.count }))) in \(Format.fixed(Date().timeIntervalSince(started), 1)) s")
        result.tokenizerPath = file
        result.tokenizer = tokenizer
        return tokenizer
    }

    /// Documents for tokenizer training: taken in turn from each source's prepared file until `bytes`
    /// are collected (deterministic).
    func trainingSample(sources: [String], bytes: Int) throws -> [String] {
        var perSource: [[String]] = []
        let share = max(1, bytes / max(1, sources.count))
        for name in sources {
            var texts: [String] = []
            var total = 0
            let reader = try LineReader(path: preparedFile(name))
            try reader.forEachLine { line, _ in
                if case let .object(entries)? = try? JSONParser.parse(line), case let .string(text)? = entries.first(where: { $0.0 == "text" })?.1 {
                    texts.append(text)
                    total += text.utf8.count
                }
                return total < share
            }
            perSource.append(texts)
        }
        var out: [String] = []
        var k = 0
        while perSource.contains(where: { k < $0.count }) {
            for texts in perSource where k < texts.count { out.append(texts[k]) }
            k += 1
        }
        return out
    }

    func checkVocabulary(_ tokenizer: any Tokenizer) throws {
        if tokenizer.vocabularySize > recipe.model.vocabSize {
            throw CorpusError("the tokenizer has \(tokenizer.vocabularySize) tokens but model.vocab_size is \(recipe.model.vocabSize): ids would have no embedding; raise model.vocab_size or use vocab_size: auto",
                              at: recipe.tree.at("model.vocab_size")?.location ?? recipe.tree.keyLocation("model.vocab_size"))
        }
    }

    func endOfDocumentID(_ tokenizer: any Tokenizer) throws -> Int32 {
        if let eos = recipe.tokenizer?.specialTokens["eos"] {
            guard let id = tokenizer.id(of: eos) else {
                throw CorpusError("tokenizer.special_tokens.eos '\(eos)' is not in the tokenizer's vocabulary",
                                  at: recipe.tree.at("tokenizer.special_tokens.eos")?.location)
            }
            return id
        }
        guard let id = tokenizer.specialIDs["eos"] else {
            throw CorpusError("the tokenizer defines no end-of-document token; set tokenizer.special_tokens.eos",
                              at: recipe.tree.keyLocation("tokenizer"))
        }
        return id
    }

    // MARK: Tokenize

    /// Encodes prepared documents in parallel batches and appends them, in order, to a Megatron dataset.
    func tokenize(_ prepared: String, with tokenizer: any Tokenizer, eod: Int32, into prefix: String,
                  dtype: MegatronDType) throws -> (documents: Int, tokens: Int) {
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: dtype)
        let reader = try LineReader(path: prepared)
        var batch: [String] = []
        var documents = 0
        func flush() throws {
            for ids in tokenizer.encodeBatch(batch, threads: threads) { try writer.add(document: ids + [eod]) }
            documents += batch.count
            batch.removeAll(keepingCapacity: true)
        }
        try reader.forEachLine { line, number in
            guard case let .object(entries)? = try? JSONParser.parse(line), case let .string(text)? = entries.first(where: { $0.0 == "text" })?.1 else {
                throw CorpusError("malformed prepared document", at: SourceLocation(file: prepared, line: number, column: 1))
            }
            batch.append(text)
            if batch.count >= 1024 { try flush() }
            return true
        }
        try flush()
        try writer.finish()
        return (documents, writer.tokens)
    }
}

/// Tokenizer training for the `tokenizer` stage.
public enum TokenizerTraining {
    /// Trains a byte-level BPE on `texts`, writes its tokenizer.json to `output` (atomically) and
    /// returns it loaded, so the run encodes with exactly what was saved.
    public static func trainByteLevelBPE(texts: [String], vocabularySize: Int, minFrequency: Int, specialTokens: [String],
                                         threads: Int, output: String) throws -> any Tokenizer {
        var trainer = BPETrainer(vocabularySize: vocabularySize, minFrequency: minFrequency, specialTokens: specialTokens, threads: threads)
        trainer.add(texts: texts)
        let data = try trainer.train().tokenizerJSON()
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: output).deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: output), options: .atomic)
        return try HFTokenizer(data: data, file: output)
    }
}
