import KondateRecipe
import Foundation
import KondateSupport

/// One tokenized source as the mixture sees it.
public struct MixtureSource: Sendable {
    public var name: String
    /// Path prefix of its `.bin/.idx` pair.
    public var prefix: String
    /// Relative share (token level) when no budget is given.
    public var weight: Double?
    /// Absolute training tokens to draw.
    public var budget: Int?
    /// Passes over the source that may be taken before it is an error (nil: unlimited for weights;
    /// a budget beyond the available tokens then needs it).
    public var maxEpochs: Double?

    public init(name: String, prefix: String, weight: Double? = nil, budget: Int? = nil, maxEpochs: Double? = nil) {
        self.name = name
        self.prefix = prefix
        self.weight = weight
        self.budget = budget
        self.maxEpochs = maxEpochs
    }
}

/// Samples of `seqLen + 1` tokens cut from one source's documents, Megatron-style: documents are
/// concatenated in a shuffled order (reshuffled each epoch) and consecutive samples overlap by one
/// token, so every token is a target exactly once per pass.
public struct SourceSamples: Sendable {
    public let dataset: IndexedDataset
    /// Document (sequence) ids in reading order, over as many epochs as needed.
    public let order: [Int32]
    /// Start of each sample (position in `order`, token offset); one extra entry marks the end.
    public let starts: [(position: Int32, offset: Int32)]
    public let seqLen: Int
    public let epochs: Int

    public var count: Int { starts.count - 1 }

    /// Builds `samples` samples from `documents` (ids into the dataset), shuffling with `rng`.
    public init(dataset: IndexedDataset, documents: [Int32], samples: Int, seqLen: Int, rng: inout SplitMix64) throws {
        self.dataset = dataset
        self.seqLen = seqLen
        let perEpoch = documents.reduce(0) { $0 + Int(dataset.sequenceLengths[Int($1)]) }
        guard perEpoch > 1 else { throw KondateError(.inputData, "'\(dataset.prefix)' has no tokens to sample from") }
        let needed = samples * seqLen + 1
        let epochs = max(1, (needed + perEpoch - 1) / perEpoch)
        var order: [Int32] = []
        order.reserveCapacity(documents.count * epochs)
        for _ in 0..<epochs {
            var epoch = documents
            for i in stride(from: epoch.count - 1, to: 0, by: -1) {
                let j = Int(rng.below(UInt64(i + 1)))
                epoch.swapAt(i, j)
            }
            order += epoch
        }
        var starts: [(Int32, Int32)] = [(0, 0)]
        starts.reserveCapacity(samples + 1)
        var position = 0, offset = 0
        while starts.count <= samples {
            var remaining = seqLen + 1
            while remaining > 0 {
                let available = Int(dataset.sequenceLengths[Int(order[position])]) - offset
                remaining -= available
                if remaining <= 0 {
                    offset += remaining + available - 1   // the last token is the next sample's first
                } else {
                    position += 1
                    offset = 0
                }
            }
            starts.append((Int32(position), Int32(offset)))
        }
        self.order = order
        self.starts = starts
        self.epochs = epochs
    }

    /// The `seqLen + 1` tokens of sample `k`.
    public func sample(_ k: Int) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(seqLen + 1)
        var (position, offset) = (Int(starts[k].position), Int(starts[k].offset))
        let end = starts[k + 1]
        while position < Int(end.position) {
            let doc = Int(order[position])
            out += dataset.tokens(doc, offset: offset)
            position += 1
            offset = 0
        }
        out += dataset.tokens(Int(order[position]), offset: offset, length: Int(end.offset) - offset + 1)
        return out
    }
}

/// The blended training stream: which source each global sample comes from and which of its samples.
///
/// Blending follows Megatron's `build_blending_indices`: sample i goes to the source with the largest
/// `weight·max(i, 1) − drawn`, ties to the first source; no randomness, so every prefix of the stream
/// has the requested shares to within one sample. Within a source, samples are visited in a seeded
/// shuffled order.
public struct Mixture: Sendable {
    public struct Share: Sendable {
        public var name: String
        public var requestedShare: Double
        public var realisedShare: Double
        public var availableTokens: Int
        public var drawnTokens: Int
        public var epochs: Double
        public var samples: Int
        public var documents: Int
        public var validationDocuments: Int
    }

    public let seqLen: Int
    public let sources: [SourceSamples]
    /// Per global sample: the source, and the sample of that source.
    public let sourceIndex: [UInt16]
    public let sampleIndex: [Int64]
    /// Validation samples: (source, sample) over the held-out documents, one pass, source by source.
    public let validation: [SourceSamples]
    public let shares: [Share]

    public var count: Int { sourceIndex.count }

    /// The `seqLen + 1` tokens of global sample `i`.
    public func sample(_ i: Int) -> [Int32] {
        sources[Int(sourceIndex[i])].sample(Int(sampleIndex[i]))
    }

    /// Builds the mixture for `samples` training samples of `seqLen + 1` tokens.
    /// - Parameters:
    ///   - heldOut: fraction of each source's documents reserved for validation.
    ///   - seed: the recipe seed; the same seed gives the same stream.
    public init(sources inputs: [MixtureSource], samples: Int, seqLen: Int, heldOut: Double, seed: UInt64) throws {
        guard !inputs.isEmpty else { throw KondateError(.inputData, "the corpus has no sources") }
        guard samples > 0, seqLen > 0 else { throw KondateError(.inputData, "the mixture needs a positive number of samples and sequence length") }
        self.seqLen = seqLen
        let datasets = try inputs.map { try IndexedDataset(prefix: $0.prefix) }

        // Train/validation split of documents, per source, from the seed.
        var trainDocs: [[Int32]] = [], validDocs: [[Int32]] = []
        for (k, (input, dataset)) in zip(inputs, datasets).enumerated() {
            guard dataset.count > 0, dataset.totalTokens > 1 else {
                throw KondateError(.inputData, "source '\(input.name)' is empty after filtering (no tokens in \(input.prefix).bin)")
            }
            var ids = (0..<Int32(dataset.count)).map { $0 }
            var rng = SplitMix64(seed: seed ^ StableHash.hash(input.name) ^ UInt64(k))
            for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, Int(rng.below(UInt64(i + 1)))) }
            let held = heldOut > 0 ? min(ids.count - 1, max(1, Int((Double(ids.count) * heldOut).rounded()))) : 0
            validDocs.append(Array(ids.prefix(held)).sorted())
            trainDocs.append(Array(ids.dropFirst(held)).sorted())
        }
        let available = zip(trainDocs, datasets).map { docs, d in docs.reduce(0) { $0 + Int(d.sequenceLengths[Int($1)]) } }

        // Shares: budgets first, the rest by weight (default: the source's size).
        let totalTokens = Double(samples * seqLen)
        let budgeted = inputs.compactMap(\.budget).reduce(0.0) { $0 + Double($1) }
        guard budgeted <= totalTokens + 0.5 else {
            throw KondateError(.corpusBudget, "corpus budgets sum to \(Format.grouped(Int(saturating: budgeted))) tokens, more than the \(Format.grouped(Int(totalTokens))) training tokens")
        }
        let weights = zip(inputs, available).map { input, avail in input.budget == nil ? (input.weight ?? Double(avail)) : 0 }
        let weightSum = weights.reduce(0, +)
        let remaining = totalTokens - budgeted
        if remaining > 0.5, weightSum <= 0 {
            throw KondateError(.corpusBudget, "budgets supply \(Format.grouped(Int(budgeted))) of \(Format.grouped(Int(totalTokens))) training tokens and no source has a weight for the rest")
        }
        let shares = zip(inputs, weights).map { input, w in
            input.budget.map { Double($0) / totalTokens } ?? (weightSum > 0 ? remaining / totalTokens * w / weightSum : 0)
        }
        for (k, input) in inputs.enumerated() {
            let drawn = shares[k] * totalTokens
            let epochs = drawn / Double(max(1, available[k]))
            let allowed = input.maxEpochs ?? (input.budget == nil ? .infinity : 1)
            if epochs > allowed + 1e-9 {
                let what = input.budget.map { "its budget of \(Format.grouped($0)) tokens" } ?? "its share of \(Format.percent(shares[k])) (\(Format.grouped(Int(drawn))) tokens)"
                throw KondateError(.corpusEpochs, "source '\(input.name)' has \(Format.grouped(available[k])) training tokens; \(what) would take \(Format.fixed(epochs, 2)) epochs, over max_epochs \(input.maxEpochs.map(Format.number) ?? "1 (budgets)"); set max_epochs: \(Int(epochs.rounded(.up))) to allow the repetition, or lower it")
            }
        }

        // Greedy blending (Megatron's build_blending_indices).
        var counts = [Int](repeating: 0, count: inputs.count)
        var sourceIndex = [UInt16](repeating: 0, count: samples)
        var sampleIndex = [Int64](repeating: 0, count: samples)
        for i in 0..<samples {
            var best = 0
            var bestError = -Double.infinity
            for d in 0..<inputs.count where shares[d] > 0 {
                let error = shares[d] * Double(max(i, 1)) - Double(counts[d])
                if error > bestError { bestError = error; best = d }
            }
            sourceIndex[i] = UInt16(best)
            sampleIndex[i] = Int64(counts[best])
            counts[best] += 1
        }

        // Per-source samples (shuffled documents, then a shuffled visiting order).
        var built: [SourceSamples] = [], validation: [SourceSamples] = []
        for (k, dataset) in datasets.enumerated() {
            var rng = SplitMix64(seed: seed &+ 0x1000 &+ UInt64(k))
            let n = max(1, counts[k])
            built.append(try SourceSamples(dataset: dataset, documents: trainDocs[k], samples: n, seqLen: seqLen, rng: &rng))
            let validTokens = validDocs[k].reduce(0) { $0 + Int(dataset.sequenceLengths[Int($1)]) }
            if validTokens > seqLen + 1 {
                var vrng = SplitMix64(seed: seed &+ 0x2000 &+ UInt64(k))
                validation.append(try SourceSamples(dataset: dataset, documents: validDocs[k], samples: (validTokens - 1) / seqLen,
                                                    seqLen: seqLen, rng: &vrng))
            }
        }
        var permuted = sampleIndex
        for k in 0..<inputs.count where counts[k] > 1 {
            var visit = (0..<Int64(counts[k])).map { $0 }
            var rng = SplitMix64(seed: seed &+ 0x3000 &+ UInt64(k))
            for i in stride(from: visit.count - 1, to: 0, by: -1) { visit.swapAt(i, Int(rng.below(UInt64(i + 1)))) }
            for i in 0..<samples where Int(sourceIndex[i]) == k { permuted[i] = visit[Int(sampleIndex[i])] }
        }
        self.sources = built
        self.sourceIndex = sourceIndex
        self.sampleIndex = permuted
        self.validation = validation
        self.shares = inputs.indices.map { k in
            Share(name: inputs[k].name, requestedShare: shares[k], realisedShare: Double(counts[k]) / Double(samples),
                  availableTokens: available[k], drawnTokens: counts[k] * seqLen,
                  epochs: Double(counts[k] * seqLen) / Double(max(1, available[k])), samples: counts[k],
                  documents: trainDocs[k].count, validationDocuments: validDocs[k].count)
        }
    }

    public var reportJSON: JSON {
        .object([
            ("samples", .int(count)), ("seq_len", .int(seqLen)), ("tokens", .int(count * seqLen)),
            ("sources", .array(shares.map { s in .object([
                ("name", .string(s.name)), ("requested_share", .double(s.requestedShare)), ("realised_share", .double(s.realisedShare)),
                ("available_tokens", .int(s.availableTokens)), ("drawn_tokens", .int(s.drawnTokens)), ("epochs", .double(s.epochs)),
                ("samples", .int(s.samples)), ("train_documents", .int(s.documents)), ("validation_documents", .int(s.validationDocuments)),
            ]) })),
            ("validation_samples", .int(validation.reduce(0) { $0 + $1.count })),
        ])
    }

    /// Writes the blended index as two little-endian arrays: `<path>.source.u16` and `<path>.sample.i64`.
    public func writeIndex(to path: String) throws {
        var a = Data(capacity: sourceIndex.count * 2), b = Data(capacity: sampleIndex.count * 8)
        for v in sourceIndex { withUnsafeBytes(of: v.littleEndian) { a.append(contentsOf: $0) } }
        for v in sampleIndex { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        try a.write(to: URL(fileURLWithPath: path + ".source.u16"), options: .atomic)
        try b.write(to: URL(fileURLWithPath: path + ".sample.i64"), options: .atomic)
    }
}

/// Batches for one data-parallel rank: global batch g of step s is samples [s·G, (s+1)·G); rank r
/// takes the r-th contiguous slice of G/D samples, cut into micro batches. Position is a pure function
/// of (step, micro batch), so a run resumes exactly from any step.
public struct BatchLoader: Sendable {
    public let mixture: Mixture
    public let globalBatch: Int
    public let microBatch: Int
    public let rank: Int
    public let dataParallel: Int

    public init(mixture: Mixture, globalBatch: Int, microBatch: Int, rank: Int = 0, dataParallel: Int = 1) throws {
        guard dataParallel > 0, rank >= 0, rank < dataParallel, microBatch > 0, globalBatch % (microBatch * dataParallel) == 0 else {
            throw KondateError(.inputData, "global batch \(globalBatch) does not split into micro batches of \(microBatch) over \(dataParallel) ranks")
        }
        self.mixture = mixture
        self.globalBatch = globalBatch
        self.microBatch = microBatch
        self.rank = rank
        self.dataParallel = dataParallel
    }

    public var microBatchesPerStep: Int { globalBatch / (microBatch * dataParallel) }
    public var steps: Int { mixture.count / globalBatch }

    /// Inputs and targets of micro batch `micro` of `step`, each (microBatch, seqLen) row-major.
    public func batch(step: Int, micro: Int) -> (tokens: [Int32], targets: [Int32]) {
        let perRank = globalBatch / dataParallel
        let first = step * globalBatch + rank * perRank + micro * microBatch
        var tokens: [Int32] = [], targets: [Int32] = []
        tokens.reserveCapacity(microBatch * mixture.seqLen)
        targets.reserveCapacity(microBatch * mixture.seqLen)
        for k in 0..<microBatch {
            let sample = mixture.sample((first + k) % mixture.count)
            tokens += sample.dropLast()
            targets += sample.dropFirst()
        }
        return (tokens, targets)
    }
}

extension Mixture {
    /// The blend a run's corpus.mix stage wrote (`mixture.json`), when it is the mix of this recipe: the same sources
    /// and the same number of samples of the same length. Anything else is named in a note and ignored.
    public static func recordedShares(_ file: String, recipe: Recipe, note: (String) -> Void) -> [String: Double]? {
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let data = FileManager.default.contents(atPath: file),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let sources = json["sources"] as? [[String: Any]] else {
            note("\(file) is not a mixture report; the blend uses the recipe's declared shares")
            return nil
        }
        var shares: [String: Double] = [:]
        for s in sources {
            guard let name = s["name"] as? String, let share = (s["requested_share"] as? NSNumber)?.doubleValue else { continue }
            shares[name] = share
        }
        let expected = Set((recipe.corpus?.sources ?? []).map(\.name))
        let samples = (recipe.pretrain?.steps ?? 0) * (recipe.pretrain?.globalBatch ?? 0)
        guard Set(shares.keys) == expected, (json["samples"] as? NSNumber)?.intValue == samples,
              (json["seq_len"] as? NSNumber)?.intValue == recipe.model.seqLen else {
            note("\(file) was written for another corpus mix (sources, samples or sequence length differ); the blend uses the recipe's declared shares")
            return nil
        }
        return shares
    }
}
