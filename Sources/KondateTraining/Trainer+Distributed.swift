import Foundation
import KondateCollectives
import KondateKernels
import KondateModel

/// The distributed training step, as Megatron-LM runs it:
///
/// - **Data parallel.** Every rank receives the whole global batch; data-parallel rank d takes the d-th
///   of `data.size` equal runs of micro-batches (padded with unscored ones when they do not divide). Gradients are summed over the data group (the loss
///   scale 1 / (scored tokens of the global batch) makes the sum the gradient of the global mean).
///   Without ZeRO the sum is an all-reduce in buckets of `bucketElements`, started during the last
///   micro-batch's backward pass as soon as a bucket's layers are done. With ZeRO-1 the gradients are
///   reduce-scattered into near-equal shards, each rank updates its shard with its own AdamW state,
///   and the parameters are all-gathered. With ZeRO-2 each layer's gradients are reduce-scattered as
///   soon as every backward pass (every micro-batch) finishes the layer, and so are the head and final
///   norm before it and the embedding after it; each rank adds its part to a shard-sized accumulator
///   and that part of the gradient buffer is released, so a rank holds one of those parts at a time
///   besides its shard (a tied embedding split across pipeline stages is held for the step and
///   reduced at its end, after the two copies are summed).
/// - **Pipeline parallel.** 1F1B: stage s runs min(stages − s − 1, m) warm-up forward passes, then
///   alternates one forward and one backward, then drains the remaining backward passes. Activations go
///   to the next stage and their gradients come back by point-to-point messages (sends never block, so
///   the schedule cannot deadlock). A tied embedding's gradient is summed between the first and last
///   stage before the data-parallel reduction.
/// - **Tensor parallel** happens inside the model (`Transformer`).
/// - **Clipping** uses the global gradient norm: every gradient element is counted once over the
///   world (replicated tensors on tensor rank 0, the tied copy on the first stage, each ZeRO shard on
///   its owner, otherwise data rank 0).
extension Trainer {
    /// The data-parallel share of micro-batches of this rank.
    /// A step whose micro-batches do not divide evenly (a data set's last, partial batch) is padded
    /// with micro-batches that score nothing, so they add nothing to the loss or the gradients.
    func localMicroBatches(_ microBatches: [MicroBatch], groups: ParallelGroups) -> ArraySlice<MicroBatch> {
        let dp = groups.data.size
        var all = microBatches
        while all.count % dp != 0, let last = microBatches.last {
            all.append(MicroBatch(tokens: [Int32](repeating: 0, count: last.tokens.count),
                                  targets: [Int32](repeating: Kernels.ignoreIndex, count: last.targets.count), batch: last.batch))
        }
        let k = all.count / dp
        return all[(groups.data.rank * k)..<((groups.data.rank + 1) * k)]
    }

    func distributedStep(_ microBatches: [MicroBatch], seq: Int, groups g: ParallelGroups) throws(TrainingError) -> StepReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let total = microBatches.reduce(0) { $0 + $1.counted }
        guard total > 0 else { throw .noTargets(step: step) }
        let local = localMicroBatches(microBatches, groups: g)
        let dp = g.data.size
        let streamed = dp > 1 ? shardGradients : nil
        if let streamed {
            model.releaseGradients(0..<model.layout.count)
            streamed.update(repeating: 0)
        } else {
            model.zeroGradients()
        }
        let gradients = model.gradients!
        var communication: UInt64 = 0
        func timed(_ body: () -> Void) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            communication += DispatchTime.now().uptimeNanoseconds - t0
        }

        // ZeRO-2: every backward pass hands each part of the gradients to their owners as soon as it is
        // final — the head and final norm, then each layer, then the embedding — unless a tied embedding
        // spans two pipeline stages: its two copies are summed at the end of the step first.
        let layers = layerRegion, tiedAcrossStages = tiedAcrossStages
        var pending = gradients.count
        let streamHook: ((Int) -> Void)? = streamed == nil ? nil : { offset in
            let lo = offset == 0 && tiedAcrossStages ? layers.lowerBound : offset
            if lo < pending {
                timed { self.reduceToOwners(lo..<pending, groups: g) }
                pending = lo
            }
            if offset == 0 { pending = gradients.count }
        }
        // Buckets of the data-parallel all-reduce start while the last backward pass runs: gradients
        // from `offset` to the end of the buffer are final once the hook reports `offset`.
        var started = gradients.count
        let overlap = dp > 1 && !g.zero
        let hook: ((Int) -> Void)? = overlap ? { offset in
            guard offset > 0 else { return }   // the first bucket waits for the tied-embedding sum below
            if started - offset >= g.bucketElements {
                g.data.startAllReduce(UnsafeMutableBufferPointer(rebasing: gradients[offset..<started]))
                started = offset
            } else {
                g.data.progress()
            }
        } : nil
        // Dropout keys count rows from the step's first micro-batch, whichever rank runs it.
        var firstRows: [Int] = []
        var row = microBatches.prefix(local.startIndex).reduce(0) { $0 + $1.batch }
        for mb in local {
            firstRows.append(row)
            row += mb.batch
        }
        defer { model.dropoutContext = nil }
        let (lossSum, _) = try runSchedule(local, seq: seq, lossScale: 1 / Float(total), groups: g, lastBackwardHook: hook,
                                           everyBackwardHook: streamHook, dropoutRows: firstRows)
        communication += pipelineWait

        timed {
            synchroniseTiedEmbedding(gradients, groups: g)
            if dp > 1 {
                if streamed != nil {
                    if tiedAcrossStages { reduceToOwners(0..<layers.lowerBound, groups: g) }
                } else if g.zero {
                    g.data.reduceScatter(gradients, counts: ParallelGroups.blocks(gradients.count, parts: dp))
                } else {
                    if started > 0 { g.data.startAllReduce(UnsafeMutableBufferPointer(rebasing: gradients[0..<started])) }
                    g.data.finishReductions()
                }
            }
        }

        // The gradients in layout offsets, as far as this rank reads them: its shard under ZeRO-2.
        let owned = streamed.map { $0.baseAddress! - optimizer.range.lowerBound } ?? gradients.baseAddress!
        // Loss and gradient norm over the world.
        let contributesLoss = model.shard.isLastStage && g.tensor.rank == 0
        var loss = 0.0, norm = 0.0
        timed {
            loss = g.world.allReduce(contributesLoss ? lossSum : 0) / Double(total)
            norm = g.world.allReduce(ownedSquaredNorm(owned, groups: g)).squareRoot()
        }
        var report = try update(loss: loss, norm: norm, tokens: microBatches.reduce(0) { $0 + $1.tokens.count }, gradients: owned)
        if !report.skipped && g.zero && dp > 1 {
            timed { g.data.allGather(model.parameters, counts: ParallelGroups.blocks(gradients.count, parts: dp)) }
        }
        lastCommunicationSeconds = Double(communication) / 1e9
        step += 1
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return report
    }

    /// Bytes the gradients occupy at the peak of a step: the whole buffer, or under ZeRO-2 the largest
    /// part held at one time — the head and final norm, one layer, or the embedding, with a tied
    /// embedding across pipeline stages held for the whole step — and the shard.
    public var gradientBytes: Int {
        let count = model.layout.count
        guard let shard = shardGradients else { return count * MemoryLayout<Float>.stride }
        var layerSizes: [Int: Int] = [:]
        for t in model.layout.tensors { if let l = t.layer { layerSizes[l, default: 0] += t.count } }
        let layers = layerRegion, largestLayer = layerSizes.values.max() ?? 0
        let before = layers.lowerBound, after = count - layers.upperBound
        let held = tiedAcrossStages ? before + max(after, largestLayer) : max(before, after, largestLayer)
        return (held + shard.count) * MemoryLayout<Float>.stride
    }

    /// A tied embedding held by the first and the last pipeline stage (summed at the end of a step).
    var tiedAcrossStages: Bool { model.config.tieEmbeddings && model.shard.pipelineSize > 1 }

    /// The part of the gradient buffer holding this rank's transformer layers (contiguous in the layout).
    var layerRegion: Range<Int> {
        let tensors = model.layout.tensors.filter { $0.layer != nil }
        guard let lo = tensors.map(\.offset).min(), let hi = tensors.map({ $0.offset + $0.count }).max() else {
            let end = model.layout.tensors.first { $0.role != .embedding && $0.role != .positions }?.offset ?? model.layout.count
            return end..<end
        }
        return lo..<hi
    }

    /// ZeRO-2: sums `gradients[range]` over the data group into the owners of its elements, adds this
    /// rank's part to its shard, and releases the range (zeros, its pages returned to the system).
    func reduceToOwners(_ range: Range<Int>, groups g: ParallelGroups) {
        guard !range.isEmpty, let shard = shardGradients, let gradients = model.gradients else { return }
        var counts: [Int] = []
        var blockStart = 0
        for size in ParallelGroups.blocks(gradients.count, parts: g.data.size) {
            let block = blockStart..<(blockStart + size)
            counts.append(block.clamped(to: range).count)
            blockStart += size
        }
        g.data.reduceScatter(UnsafeMutableBufferPointer(rebasing: gradients[range]), counts: counts)
        let mine = optimizer.range.clamped(to: range)
        if !mine.isEmpty {
            let from = gradients.baseAddress! + mine.lowerBound, to = shard.baseAddress! + (mine.lowerBound - optimizer.range.lowerBound)
            Parallel.forEach(count: mine.count, chunkSize: 1 << 15) { chunk in
                for i in chunk { to[i] += from[i] }
            }
        }
        model.releaseGradients(range)
    }

    /// Mean loss over `microBatches` without updating anything: each data-parallel rank evaluates every
    /// data.size-th micro-batch through the pipeline; the sums are combined over the world.
    func distributedEvaluate(_ microBatches: [MicroBatch], seq: Int, groups g: ParallelGroups) throws(TrainingError) -> Double {
        let (sum, count) = try runSchedule(localMicroBatches(microBatches, groups: g), seq: seq, lossScale: nil, groups: g, lastBackwardHook: nil)
        let contributes = model.shard.isLastStage && g.tensor.rank == 0
        let totalSum = g.world.allReduce(contributes ? sum : 0)
        let totalCount = g.world.allReduce(contributes ? Double(count) : 0)
        return totalCount > 0 ? totalSum / totalCount : .nan
    }

    /// Runs the micro-batches through this rank's pipeline stage, 1F1B (forward only without
    /// `lossScale`). Returns Σ loss × count and Σ count of the micro-batches (on the last stage; zeros elsewhere).
    func runSchedule(_ local: ArraySlice<MicroBatch>, seq: Int, lossScale: Float?, groups g: ParallelGroups,
                     lastBackwardHook: ((Int) -> Void)?, everyBackwardHook: ((Int) -> Void)? = nil,
                     dropoutRows: [Int]? = nil) throws(TrainingError) -> (Double, Int) {
        let shard = model.shard, pipeline = g.pipeline
        let first = shard.isFirstStage, lastStage = shard.isLastStage
        let batches = Array(local), m = batches.count
        let stages = shard.pipelineSize, s = shard.pipelineRank
        let training = lossScale != nil
        let slots = training ? max(1, min(m, stages - s)) : 1
        let hidden = model.config.hidden
        var inputs = [[Float]](repeating: [], count: slots)
        var outputGradient = [Float]()
        var lossSum = 0.0, counted = 0
        enum Tag { static let activation = 0, gradient = 1 }
        pipelineWait = 0
        func waiting(_ body: () -> Void) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            pipelineWait += DispatchTime.now().uptimeNanoseconds - t0
        }

        func forward(_ i: Int) throws(TrainingError) {
            let mb = batches[i], slot = i % slots
            let rows = mb.batch * seq
            if !first {
                if inputs[slot].count != rows * hidden { inputs[slot] = [Float](repeating: 0, count: rows * hidden) }
                waiting { inputs[slot].withUnsafeMutableBufferPointer { pipeline.receive($0, from: s - 1, tag: Tag.activation) } }
            }
            model.dropoutContext = dropoutRows.map { DropoutContext(seed: options.dropoutSeed, step: step, firstRow: $0[i]) }
            let result: (loss: Float, count: Int)?
            do {
                result = try inputs[slot].withUnsafeBufferPointer { (buffer) throws(ModelError) in
                    try model.forward(tokens: mb.tokens, targets: lastStage ? mb.targets : nil, batch: mb.batch, seq: seq, slot: slot,
                                      input: first ? nil : buffer.baseAddress)
                }
            } catch { throw .model(error) }
            if !lastStage {
                pipeline.send(Array(model.stageOutput(slot: slot)), to: s + 1, tag: Tag.activation)
            } else if let result {
                lossSum += Double(result.loss) * Double(result.count)
                counted += result.count
            }
        }

        func backward(_ i: Int) {
            let mb = batches[i], slot = i % slots
            let isLast = i == m - 1
            model.gradientsReady = everyBackwardHook ?? (isLast ? lastBackwardHook : nil)
            defer { model.gradientsReady = nil }
            if lastStage {
                model.backward(lossScale: lossScale!, slot: slot, outputGradient: nil)
            } else {
                let count = mb.batch * seq * hidden
                if outputGradient.count != count { outputGradient = [Float](repeating: 0, count: count) }
                waiting { outputGradient.withUnsafeMutableBufferPointer { pipeline.receive($0, from: s + 1, tag: Tag.gradient) } }
                outputGradient.withUnsafeBufferPointer { model.backward(lossScale: lossScale!, slot: slot, outputGradient: $0.baseAddress) }
            }
            if !first { pipeline.send(Array(model.inputGradient(slot: slot)), to: s - 1, tag: Tag.gradient) }
        }

        if !training {
            for i in 0..<m { try forward(i) }
        } else {
            let warmup = min(stages - s - 1, m)
            for i in 0..<warmup { try forward(i) }
            for j in 0..<(m - warmup) {
                try forward(warmup + j)
                backward(j)
            }
            for j in (m - warmup)..<m where j >= 0 { backward(j) }
        }
        waiting { pipeline.finishSends() }
        return (lossSum, counted)
    }

    /// Sums the gradient of a tied embedding between the first and the last pipeline stage, which both
    /// hold it (as the input embedding and as the head).
    func synchroniseTiedEmbedding(_ gradients: UnsafeMutableBufferPointer<Float>, groups g: ParallelGroups) {
        let shard = model.shard
        guard model.config.tieEmbeddings, shard.pipelineSize > 1, shard.isFirstStage || shard.isLastStage,
              let t = model.layout.tensors.first(where: { $0.role == .embedding }) else { return }
        let mine = UnsafeMutableBufferPointer(rebasing: gradients[t.offset..<(t.offset + t.count)])
        let peer = shard.isFirstStage ? shard.pipelineSize - 1 : 0
        var theirs = [Float](repeating: 0, count: t.count)
        g.pipeline.send(Array(mine), to: peer, tag: 2)
        theirs.withUnsafeMutableBufferPointer { g.pipeline.receive($0, from: peer, tag: 2) }
        g.pipeline.finishSends()
        // First + last on both stages, in that order, so the two copies stay bitwise equal.
        for i in 0..<t.count { mine[i] = shard.isFirstStage ? mine[i] + theirs[i] : theirs[i] + mine[i] }
    }

    /// Σ g² over the gradient elements this rank counts for the global norm (each element of the whole
    /// model once over the world), in Double over fixed chunks. `gradients` is indexed by layout offsets
    /// and needs to be valid only where this rank counts.
    func ownedSquaredNorm(_ gradients: UnsafeMutablePointer<Float>, groups g: ParallelGroups) -> Double {
        let shard = model.shard
        var owned: Range<Int> = 0..<model.layout.count
        if g.zero { owned = optimizer.range } else if g.data.rank != 0 { return 0 }
        var sum = 0.0
        for t in model.layout.tensors {
            if t.isTiedCopy { continue }
            if t.split == .replicated && shard.tensorRank != 0 { continue }
            let lo = max(t.offset, owned.lowerBound), hi = min(t.offset + t.count, owned.upperBound)
            guard lo < hi else { continue }
            let norm = GradientTools.globalNorm(UnsafeBufferPointer(start: gradients + lo, count: hi - lo))
            sum += norm * norm
        }
        return sum
    }
}
