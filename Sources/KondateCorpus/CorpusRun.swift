import Foundation
import KondateTokenizers
import KondatePlan
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
    public var directory: String
    public var threads: Int
    public var log: (String) -> Void
    /// How reports name input files (relative to the recipe's directory: `Recipe.portablePath`).
    public var portablePath: @Sendable (String) -> String
    /// Where the recipe wrote its keys, for error messages.
    public var locations: RecipeLocations
    /// The corpus stages of the recipe's graph, for `run()`.
    let graph: ExecutionGraph

    public init(recipe: Recipe, directory: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                log: @escaping (String) -> Void = { _ in }) {
        self.init(graph: ExecutionGraph(recipe: recipe), locations: RecipeLocations(recipe.tree), portablePath: { [recipe] in recipe.portablePath($0) },
                  directory: directory, threads: threads, log: log)
    }

    public init(graph: ExecutionGraph, locations: RecipeLocations, portablePath: @escaping @Sendable (String) -> String, directory: String,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, log: @escaping (String) -> Void = { _ in }) {
        self.graph = graph
        self.locations = locations
        self.portablePath = portablePath
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

    /// The prepared documents of a source.
    public func preparedFile(_ source: String) -> String { path("corpus", "prepared", source, "\(source).jsonl") }
    /// The Megatron dataset prefix of a source.
    public func tokensPrefix(_ source: String) -> String { path("corpus", "tokens", source, source) }
    /// The file a trained tokenizer is written to.
    public var trainedTokenizerFile: String { path("tokenizer", "tokenizer.json") }

    /// Every corpus stage of the graph, in order (`kondate corpus`).
    public func run() throws -> Result {
        var result = Result()
        var tokenizer: (file: String, tokenizer: any Tokenizer)?
        for stage in graph.stages {
            switch stage.payload {
            case let .corpusPrepare(c):
                result.filterReports.append(try prepare(c))
            case let .tokenizer(c):
                tokenizer = try prepareTokenizer(c)
                result.tokenizerPath = tokenizer?.file
                result.tokenizer = tokenizer?.tokenizer
            case let .corpusTokenize(c):
                guard let tokenizer else { throw KondateError(.inputData, "the recipe has no tokenizer section") }
                let started = Date()
                let (documents, tokens) = try tokenize(c, with: tokenizer.tokenizer)
                result.tokenReports.append((c.source, documents, tokens, Date().timeIntervalSince(started)))
            case let .corpusMix(c):
                let mixture = try self.mixture(c)
                try writeMixture(mixture)
                result.mixture = mixture
            case .pretrain, .tune, .eval, .release:
                break
            }
        }
        if result.filterReports.isEmpty { throw KondateError(.inputData, "the recipe has no corpus section") }
        return result
    }

    /// `corpus.prepare.<source>`: reads, filters and deduplicates a source into its prepared file.
    public func prepare(_ c: CorpusPrepareConfig) throws -> FilterReport {
        let source = c.source
        let files = try DocumentReader.expand(c.paths)
        log("corpus.prepare.\(source.name): \(files.count) file\(files.count == 1 ? "" : "s")")
        let output = preparedFile(source.name)
        let reportFile = path("corpus", "prepared", source.name, "\(source.name).report.json")
        var preparation = SourcePreparation(source: source, files: files, onError: c.onError, seed: c.seed, threads: threads)
        preparation.originPath = portablePath
        let report = try preparation.run(output: output)
        try write(report.json, to: reportFile)
        if report.documentsOut == 0 {
            throw KondateError(.inputData, "source '\(source.name)' has no documents left after reading and filtering (see \(reportFile))",
                              at: locations.at("corpus.sources.\(source.name)"))
        }
        return report
    }

    /// `tokenizer`: trains the recipe's tokenizer on the prepared sources, or loads the one it names;
    /// returns its file and the tokenizer.
    public func prepareTokenizer(_ c: TokenizerConfig) throws -> (file: String, tokenizer: any Tokenizer) {
        if let declared = c.path {
            let tokenizer: any Tokenizer
            do { tokenizer = try TokenizerLoader.load(path: declared.resolved) } catch let e as FileError {
                throw KondateError(.inputData, "tokenizer: \(e.description)", at: declared.location)
            }
            if let vocab = c.vocabSize, vocab != tokenizer.vocabularySize {
                throw KondateError(.inputData, "tokenizer.vocab_size is \(vocab) but '\(declared.resolved)' has \(tokenizer.vocabularySize) tokens; correct the recipe",
                                  at: locations.at("tokenizer.vocab_size"))
            }
            log("tokenizer: loaded \(declared.resolved) (\(tokenizer.vocabularySize) tokens)")
            return (declared.resolved, tokenizer)
        }
        guard let train = c.train else { throw KondateError(.inputData, "tokenizer needs 'path' or 'train'") }
        // Validation refuses every other algorithm and option (EngineSupport).
        let texts = try trainingSample(sources: train.sources, bytes: train.sampleSize)
        let started = Date()
        let file = trainedTokenizerFile
        let special = ["bos", "eos", "pad", "unk"].compactMap { c.specialTokens[$0] } + c.additionalSpecialTokens
        let tokenizer = try TokenizerTraining.trainByteLevelBPE(texts: texts, vocabularySize: train.vocabSize, minFrequency: train.minFrequency,
                                                               specialTokens: special, splitDigits: train.splitDigits, threads: threads, output: file)
        log("tokenizer: trained byte-level BPE, \(tokenizer.vocabularySize) tokens on \(Format.bytes(Double(texts.reduce(0) { $0 + $1.utf8.count }))) in \(Format.fixed(Date().timeIntervalSince(started), 1)) s")
        return (file, tokenizer)
    }

    /// The tokenizer a finished `tokenizer` stage left (the trained file, or the recipe's).
    public func loadTokenizer(_ c: TokenizerConfig) throws -> (file: String, tokenizer: any Tokenizer) {
        let file = c.path?.resolved ?? trainedTokenizerFile
        do { return (file, try TokenizerLoader.load(path: file)) } catch let e as FileError {
            throw KondateError(.inputData, "tokenizer: \(e.description)", at: c.path?.location)
        }
    }

    /// `corpus.tokenize.<source>`: encodes the prepared documents, EOD after each, into the source's
    /// Megatron dataset.
    public func tokenize(_ c: CorpusTokenizeConfig, with tokenizer: any Tokenizer) throws -> (documents: Int, tokens: Int) {
        if tokenizer.vocabularySize > c.modelVocabSize {
            throw KondateError(.inputData, "the tokenizer has \(tokenizer.vocabularySize) tokens but model.vocab_size is \(c.modelVocabSize): ids would have no embedding; raise model.vocab_size or use vocab_size: auto",
                              at: locations.at("model.vocab_size"))
        }
        let eod = try endOfDocumentID(tokenizer, declared: c.endOfDocument)
        let dtype = MegatronDType.optimal(vocabularySize: max(tokenizer.vocabularySize, c.modelVocabSize))
        try FileManager.default.createDirectory(atPath: path("corpus", "tokens", c.source), withIntermediateDirectories: true)
        let (documents, tokens) = try tokenize(preparedFile(c.source), with: tokenizer, eod: eod, into: tokensPrefix(c.source), dtype: dtype)
        log("corpus.tokenize.\(c.source): \(Format.grouped(documents)) documents, \(Format.grouped(tokens)) tokens")
        return (documents, tokens)
    }

    /// The pretraining mixture over the tokenized sources (computed; `writeMixture` is the
    /// `corpus.mix` stage's output).
    public func mixture(_ c: CorpusMixConfig) throws -> Mixture {
        let sources = c.sources.map { s in
            MixtureSource(name: s.name, prefix: tokensPrefix(s.name), weight: s.weight, budget: s.budget, maxEpochs: s.maxEpochs)
        }
        return try Mixture(sources: sources, samples: c.samples, seqLen: c.seqLen, heldOut: c.heldOut, seed: UInt64(c.seed))
    }

    /// `corpus.mix`: writes the mixture's sample index and report.
    public func writeMixture(_ mixture: Mixture) throws {
        try FileManager.default.createDirectory(atPath: path("corpus", "mix"), withIntermediateDirectories: true)
        try mixture.writeIndex(to: path("corpus", "mix", "train"))
        try write(mixture.reportJSON, to: path("corpus", "mix", "mixture.json"))
        log("corpus.mix: \(Format.grouped(mixture.count)) samples of \(mixture.seqLen + 1) tokens")
    }

    func write(_ json: JSON, to file: String) throws {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: file).deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((json.rendered() + "\n").utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
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

    func endOfDocumentID(_ tokenizer: any Tokenizer, declared eos: String?) throws -> Int32 {
        if let eos {
            guard let id = tokenizer.id(of: eos) else {
                throw KondateError(.inputData, "tokenizer.special_tokens.eos '\(eos)' is not in the tokenizer's vocabulary", at: locations.at("tokenizer.special_tokens.eos"))
            }
            return id
        }
        guard let id = tokenizer.specialIDs["eos"] else {
            throw KondateError(.inputData, "the tokenizer defines no end-of-document token; set tokenizer.special_tokens.eos", at: locations.at("tokenizer"))
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
                throw KondateError(.inputData, "malformed prepared document", at: SourceLocation(file: prepared, line: number, column: 1))
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
                                         splitDigits: Bool = false, threads: Int, output: String) throws -> any Tokenizer {
        var trainer = BPETrainer(vocabularySize: vocabularySize, minFrequency: minFrequency, specialTokens: specialTokens, threads: threads,
                                 splitDigits: splitDigits)
        trainer.add(texts: texts)
        let data = try trainer.train().tokenizerJSON()
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: output).deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: output), options: .atomic)
        return try HFTokenizer(data: data, file: output)
    }
}
