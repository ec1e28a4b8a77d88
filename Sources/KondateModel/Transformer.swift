import Foundation
import KondateCollectives
import KondateKernels
import KondateSupport

/// A decoder-only transformer (LLaMA or GPT-2) on the CPU: one allocation for the parameters, one for
/// their gradients and one for the activations; forward and a hand-written backward that runs the
/// layers' backward kernels in exactly the reverse order of the forward pass (llm.c's structure).
///
/// A model can be one shard of a larger one (`ModelShard`): a pipeline stage runs its own layers,
/// taking the previous stage's activations as input (`forward(…input:)`) and handing back their
/// gradient (`inputGradient`); a tensor-parallel rank holds Megatron's slices and sums partial results
/// over `tensorGroup` — after the row-parallel output and down projections in the forward pass, the
/// column-parallel layers' input gradients in the backward pass, the vocabulary-parallel embedding,
/// and the max, sum and target logit of the vocabulary-parallel cross-entropy. Several micro-batches
/// can be in flight at once (`slot`), as the 1F1B pipeline schedule needs.
public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    public let shard: ModelShard
    public let layout: ParameterLayout
    /// All parameters, laid out as `layout` says.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// Gradients, same layout; allocated on first use (inference never needs them).
    public private(set) var gradients: UnsafeMutableBufferPointer<Float>?
    /// Activations per in-flight micro-batch.
    private var slots: [Activations?] = []
    /// When set, forward and backward add each kernel's wall time to it (`kondate bench train`).
    public var profile: KernelProfile?
    /// The tensor-parallel group (nil: tensor parallelism 1).
    public let tensorGroup: (any ProcessGroup)?
    /// Told, during `backward`, the layout offset from which every gradient is final for this
    /// backward pass (after the final norm, after each layer, and 0 at the end): data parallelism
    /// starts reducing buckets there, and ZeRO-2 hands those gradients to their owners.
    public var gradientsReady: ((Int) -> Void)?
    /// How the linear layers' matrix products compute (`MatmulPrecision`); attention, norms, the loss
    /// and everything else stay f32. Parameters and gradients are f32 whatever it is.
    public let matmulPrecision: MatmulPrecision
    /// Full activation recomputation (Megatron-LM's `--recompute-granularity full --recompute-method
    /// uniform --recompute-num-layers 1`): the forward pass keeps only each layer's input; the backward
    /// pass recomputes a layer's forward before its backward. Results are bitwise those without it.
    public let recomputeLayers: Bool
    /// Dropout rates (Megatron-LM's `--hidden-dropout` and `--attention-dropout`); applied only in
    /// forward passes made while `dropoutContext` is set (training), never in evaluation.
    public let dropout: DropoutRates
    /// The step and rows of the next forward pass, set by the trainer before each training micro-batch
    /// (nil: no dropout). The mask of every element follows from it (`DropoutMask`).
    public var dropoutContext: DropoutContext?
    /// The context of each slot's last forward pass, for its backward.
    private var slotDropout: [Int: DropoutContext] = [:]
    /// The local sizes of this shard.
    let dims: Dims

    struct Dims {
        let heads: Int, kvHeads: Int, headDim: Int, qDim: Int, kvDim: Int, ffn: Int, vocab: Int, vocabStart: Int
        let layers: Range<Int>
        init(_ m: ModelConfig, _ shard: ModelShard) {
            let t = shard.tensorSize
            heads = m.heads / t
            kvHeads = m.kvHeads / t
            headDim = m.headDim
            qDim = heads * headDim
            kvDim = kvHeads * headDim
            ffn = m.ffn / t
            vocab = m.vocabSize / t
            vocabStart = shard.tensorRank * vocab
            layers = shard.layers(of: m.layers)
        }
    }

    public init(config: ModelConfig, shard: ModelShard = .whole, tensorGroup: (any ProcessGroup)? = nil,
                matmulPrecision: MatmulPrecision = .fp32, recomputeLayers: Bool = false, dropout: DropoutRates = .none) throws(ModelError) {
        try config.validate()
        try shard.validate(config)
        precondition(shard.tensorSize == 1 || tensorGroup?.size == shard.tensorSize, "tensor parallelism needs its group")
        self.config = config
        self.shard = shard
        self.tensorGroup = shard.tensorSize > 1 ? tensorGroup : nil
        self.matmulPrecision = matmulPrecision
        self.recomputeLayers = recomputeLayers
        self.dropout = dropout
        layout = ParameterLayout(config, shard: shard)
        dims = Dims(config, shard)
        parameters = .allocate(capacity: layout.count)
        parameters.initialize(repeating: 0)
    }

    deinit {
        parameters.deallocate()
        if let gradients { PageMemory.deallocate(gradients) }
        for a in slots { a?.deallocate() }
    }

    public var parameterCount: Int { layout.count }

    /// Bytes of the activation buffers allocated so far (all in-flight slots).
    public var activationBytes: Int { slots.reduce(0) { $0 + ($1?.buffer.count ?? 0) * MemoryLayout<Float>.size } }

    /// `Kernels.matmulForward` at this model's precision.
    @inline(__always)
    func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>?, rows: Int, c: Int, oc: Int) {
        Kernels.matmulForward(out: out, inp: inp, weight: weight, bias: bias, rows: rows, c: c, oc: oc, precision: matmulPrecision)
    }

    /// `Kernels.matmulBackward` at this model's precision.
    @inline(__always)
    func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                        dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, c: Int, oc: Int) {
        Kernels.matmulBackward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight, rows: rows, c: c, oc: oc,
                               precision: matmulPrecision)
    }

    @inline(__always)
    private func timed<T>(_ kernel: KernelProfile.Kernel, _ body: () -> T) -> T {
        guard let profile else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { profile.add(kernel, nanoseconds: DispatchTime.now().uptimeNanoseconds - start) }
        return body()
    }

    /// Sums `count` values at `p` over the tensor-parallel group (nothing without one).
    @inline(__always)
    private func tensorReduce(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ op: ReduceOperation = .sum) {
        guard let tensorGroup else { return }
        timed(.communication) { tensorGroup.allReduce(UnsafeMutableBufferPointer(start: p, count: count), op) }
    }

    // MARK: Initialisation

    /// Deterministic initialisation from `seed`: matrices and embeddings normal(0, init_std); the
    /// output projections of each block (o_proj / down_proj, GPT-2's c_proj) normal(0, init_std/√(2·layers))
    /// as in GPT-2 and Megatron's scaled init; norm weights 1; biases 0. Each tensor draws from its own
    /// stream (seed, tensor index in the whole model), and a shard keeps its slice of the whole tensor's
    /// values, so the values do not depend on how tensors are laid out or sharded.
    public func initialize(seed: UInt64) {
        let scaled = config.initStd / Float(2 * config.layers).squareRoot()
        for t in layout.tensors {
            let p = parameters.baseAddress! + t.offset
            switch t.role {
            case .norm: p.update(repeating: 1, count: t.count)
            case .bias: p.update(repeating: 0, count: t.count)
            case .embedding, .positions, .matrix, .head, .outputProjection:
                var rng = NormalSampler(seed: seed, stream: UInt64(t.fullIndex))
                let std = t.role == .outputProjection ? scaled : config.initStd
                let segments = t.segments(rank: shard.tensorRank, parts: shard.tensorSize)
                if segments.count == 1 && segments[0].count == t.count && segments[0].full == 0 {
                    for j in 0..<t.count { p[j] = std * rng.next() }
                } else {
                    var whole = [Float](repeating: 0, count: t.fullShape.reduce(1, *))
                    for j in whole.indices { whole[j] = std * rng.next() }
                    for s in segments { for j in 0..<s.count { p[s.local + j] = whole[s.full + j] } }
                }
            }
        }
    }

    /// Sets this shard's parameters to its slices of `whole` (a model of the same configuration).
    public func copySlices(of whole: Transformer) {
        precondition(whole.config == config && whole.shard == .whole, "copySlices needs the whole model of the same configuration")
        for t in layout.tensors {
            guard let source = whole.layout[t.name] else { preconditionFailure("the whole model lacks \(t.name)") }
            let from = whole.parameters.baseAddress! + source.offset, to = parameters.baseAddress! + t.offset
            for s in t.segments(rank: shard.tensorRank, parts: shard.tensorSize) { (to + s.local).update(from: from + s.full, count: s.count) }
        }
    }

    /// The gradient buffer reads as zeros afterwards (allocated on first use, from pages of the system).
    public func zeroGradients() {
        guard let gradients else {
            gradients = PageMemory.allocate(layout.count)
            return
        }
        gradients.update(repeating: 0)
    }

    /// Zeroes `gradients[range]` and gives its whole pages back to the system (ZeRO-2: a layer's
    /// gradients, once reduced to their owners, stop counting in memory until the next backward pass).
    public func releaseGradients(_ range: Range<Int>) {
        guard let gradients else {
            gradients = PageMemory.allocate(layout.count)
            return
        }
        PageMemory.release(gradients, range)
    }

    // MARK: Activations

    /// Per-layer saved activations and the shared scratch of the backward pass, as offsets into one
    /// allocation sized for `rows = batch × seq`. Layer arrays are indexed by the shard's own layers.
    struct Activations {
        let batch: Int, seq: Int
        let buffer: UnsafeMutableBufferPointer<Float>
        // Offsets of per-layer arrays (index by layer) and of shared arrays.
        var x: [Int] = [], ln1: [Int] = [], mean1: [Int] = [], rstd1: [Int] = []
        var q: [Int] = [], k: [Int] = [], v: [Int] = [], att: [Int] = [], lse: [Int] = []
        var h: [Int] = [], ln2: [Int] = [], mean2: [Int] = [], rstd2: [Int] = []
        var up: [Int] = [], gate: [Int] = [], act: [Int] = []
        var lnf = 0, meanf = 0, rstdf = 0, logits = 0, proj = 0
        var dx = 0, dln = 0, dq = 0, dk = 0, dv = 0, datt = 0, dup = 0, dgate = 0, dact = 0
        /// Per-row scratch of the vocabulary-parallel cross-entropy (max, sum, target logit).
        var rowMax = 0, rowSum = 0, rowTarget = 0

        /// With `recompute`, every layer's stored values (all but its input `x`) share one layer's region.
        init(config m: ModelConfig, dims d: Dims, last: Bool, batch: Int, seq: Int, recompute: Bool) {
            self.batch = batch
            self.seq = seq
            let n = batch * seq, c = m.hidden, f = d.ffn
            var total = 0
            func take(_ count: Int) -> Int { defer { total += count }; return total }
            for _ in d.layers { x.append(take(n * c)) }
            for (index, _) in d.layers.enumerated() {
                if recompute && index > 0 {
                    ln1.append(ln1[0]); mean1.append(mean1[0]); rstd1.append(rstd1[0]); q.append(q[0]); k.append(k[0]); v.append(v[0])
                    att.append(att[0]); lse.append(lse[0]); h.append(h[0]); ln2.append(ln2[0]); mean2.append(mean2[0]); rstd2.append(rstd2[0])
                    up.append(up[0]); gate.append(gate[0]); act.append(act[0])
                    continue
                }
                ln1.append(take(n * c)); mean1.append(take(n)); rstd1.append(take(n))
                q.append(take(n * d.qDim)); k.append(take(n * d.kvDim)); v.append(take(n * d.kvDim))
                att.append(take(n * d.qDim)); lse.append(take(n * d.heads))
                h.append(take(n * c)); ln2.append(take(n * c)); mean2.append(take(n)); rstd2.append(take(n))
                up.append(take(n * f)); gate.append(m.arch == .llama ? take(n * f) : 0); act.append(take(n * f))
            }
            x.append(take(n * c))
            if last {
                lnf = take(n * c); meanf = take(n); rstdf = take(n)
                logits = take(n * d.vocab)
                rowMax = take(n); rowSum = take(n); rowTarget = take(n)
            }
            proj = take(n * c)
            dx = take(n * c); dln = take(n * c); dq = take(n * d.qDim); dk = take(n * d.kvDim); dv = take(n * d.kvDim)
            datt = take(n * d.qDim); dup = take(n * f); dgate = take(n * f); dact = take(n * f)
            buffer = .allocate(capacity: total)
            buffer.initialize(repeating: 0)
        }

        func deallocate() { buffer.deallocate() }
        subscript(_ offset: Int) -> UnsafeMutablePointer<Float> { buffer.baseAddress! + offset }
    }

    private func activations(slot: Int, batch: Int, seq: Int) -> Activations {
        while slots.count <= slot { slots.append(nil) }
        if let a = slots[slot], a.batch == batch, a.seq == seq { return a }
        slots[slot]?.deallocate()
        let a = Activations(config: config, dims: dims, last: shard.isLastStage, batch: batch, seq: seq, recompute: recomputeLayers)
        slots[slot] = a
        return a
    }

    /// The RoPE tables of the last sequence length used.
    private var rope: (t: Int, cos: [Float], sin: [Float])?

    private func ropeTables(_ t: Int) -> (cos: [Float], sin: [Float]) {
        if let r = rope, r.t >= t { return (r.cos, r.sin) }
        let tables = Kernels.ropeTables(t: t, headDim: config.headDim, theta: config.ropeTheta)
        rope = (t, tables.cos, tables.sin)
        return tables
    }

    // MARK: Forward

    /// Whether slot 0's logits buffer holds the logits of its last forward pass.
    private var logitsValid = false

    /// The state of each slot's last forward pass, needed by `backward`.
    private var last: [Int: (batch: Int, seq: Int, tokens: [Int32], targets: [Int32]?, counted: Int)] = [:]

    /// Runs the model on `tokens` (batch × seq, row-major). With `targets` (same shape; −100 marks a
    /// position that is not scored), returns the mean cross-entropy over the counted positions and their
    /// number. Without targets the loss is nil and only the logits are computed.
    ///
    /// A pipeline stage after the first reads its input activations (batch × seq × hidden) from `input`;
    /// a stage before the last computes no loss (nil) and leaves its output in `stageOutput(slot:)`.
    @discardableResult
    public func forward(tokens: [Int32], targets: [Int32]?, batch b: Int, seq t: Int, slot: Int,
                        input: UnsafePointer<Float>?) throws(ModelError) -> (loss: Float, count: Int)? {
        precondition(tokens.count == b * t, "tokens must hold batch × seq values")
        precondition(shard.isFirstStage || input != nil, "a later pipeline stage needs its input activations")
        if t > config.maxPositions { throw .sequenceTooLong(length: t, limit: config.maxPositions) }
        for (i, token) in tokens.enumerated() where token < 0 || Int(token) >= config.vocabSize {
            throw .tokenOutOfRange(token: token, position: i, vocabSize: config.vocabSize)
        }
        let a = activations(slot: slot, batch: b, seq: t)
        let n = b * t, c = config.hidden, v = dims.vocab, d = dims
        let p = parameters.baseAddress!
        let llama = config.arch == .llama
        let tables = llama ? ropeTables(t) : ([], [])
        let drop = dropout.isActive ? dropoutContext : nil
        slotDropout[slot] = drop

        if let input {
            a[a.x[0]].update(from: input, count: n * c)
        } else {
            tokens.withUnsafeBufferPointer { tok in
                if tensorGroup == nil {
                    timed(.embedding) { Kernels.embeddingForward(out: a[a.x[0]], tokens: tok.baseAddress!, wte: p + layout.embedding,
                                             wpe: layout.positions.map { p + $0 }, b: b, t: t, c: c) }
                } else {
                    // Vocabulary-parallel: each rank looks up its own rows (zeros elsewhere); positions are
                    // added by tensor rank 0 only, and the sum over ranks is the embedding.
                    timed(.embedding) { embeddingForwardSharded(out: a[a.x[0]], tokens: tok.baseAddress!, b: b, t: t) }
                    tensorReduce(a[a.x[0]], n * c)
                }
            }
        }
        if let drop, dropout.hidden > 0, input == nil {
            drop.mask(site: 0, p: dropout.hidden).apply(a[a.x[0]], rows: n, width: c, firstRow: drop.firstRow * t)
        }
        for l in d.layers { layerForward(l, a, batch: b, seq: t, tables: tables, dropout: drop) }
        guard shard.isLastStage else {
            last[slot] = (b, t, tokens, targets, 0)
            return nil
        }
        let top = a[a.x[d.layers.count]]
        norm(out: a[a.lnf], mean: a[a.meanf], rstd: a[a.rstdf], inp: top, weight: layout.finalNorm, bias: layout.finalNormBias, rows: n)
        timed(.matmul) { linearForward(out: a[a.logits], inp: a[a.lnf], weight: p + layout.head, bias: nil, rows: n, c: c, oc: v) }

        guard let targets else {
            last[slot] = (b, t, tokens, nil, 0)
            if slot == 0 { logitsValid = true }
            return nil
        }
        if slot == 0 { logitsValid = false }
        precondition(targets.count == n, "targets must hold batch × seq values")
        // The probabilities overwrite the logits: the backward turns them into dlogits in place.
        let result = targets.withUnsafeBufferPointer { tg in
            if tensorGroup == nil {
                return timed(.crossEntropy) { Kernels.crossEntropyForward(probs: a[a.logits], logits: a[a.logits], targets: tg.baseAddress!, rows: n, v: v) }
            }
            return crossEntropyForwardSharded(a, targets: tg.baseAddress!, rows: n)
        }
        last[slot] = (b, t, tokens, targets, result.count)
        return result
    }

    /// Layer `l` of the forward pass: from `x[l]` to `x[l+1]`, storing what its backward reads. With
    /// `recomputeLayers` the stored values go to one region shared by all layers, and `backward` runs
    /// this again for each layer before its backward (Megatron-LM's full recomputation).
    private func layerForward(_ l: Int, _ a: Activations, batch b: Int, seq t: Int, tables: ([Float], [Float]), dropout drop: DropoutContext?) {
        let n = b * t, c = config.hidden, f = dims.ffn, d = dims
        let p = parameters.baseAddress!
        let llama = config.arch == .llama
        let w = layout.block(l), i = l - d.layers.lowerBound
        let x = a[a.x[i]], ln1 = a[a.ln1[i]], q = a[a.q[i]], k = a[a.k[i]], vv = a[a.v[i]], att = a[a.att[i]]
        norm(out: ln1, mean: a[a.mean1[i]], rstd: a[a.rstd1[i]], inp: x, weight: w.norm1, bias: w.norm1Bias, rows: n)
        timed(.matmul) { linearForward(out: q, inp: ln1, weight: p + w.q, bias: w.qBias.map { p + $0 }, rows: n, c: c, oc: d.qDim) }
        timed(.matmul) { linearForward(out: k, inp: ln1, weight: p + w.k, bias: w.kBias.map { p + $0 }, rows: n, c: c, oc: d.kvDim) }
        timed(.matmul) { linearForward(out: vv, inp: ln1, weight: p + w.v, bias: w.vBias.map { p + $0 }, rows: n, c: c, oc: d.kvDim) }
        if llama {
            timed(.rope) { Kernels.ropeForward(q, cos: tables.0, sin: tables.1, b: b, t: t, heads: d.heads, headDim: d.headDim) }
            timed(.rope) { Kernels.ropeForward(k, cos: tables.0, sin: tables.1, b: b, t: t, heads: d.kvHeads, headDim: d.headDim) }
        }
        timed(.attention) { Kernels.attentionForward(out: att, lse: a[a.lse[i]], q: q, k: k, v: vv, b: b, t: t, heads: d.heads,
                                 kvHeads: d.kvHeads, headDim: d.headDim, dropout: attentionDropout(drop, layer: l)) }
        // Row-parallel: partial products summed over the tensor group; the bias is added once.
        timed(.matmul) { linearForward(out: a[a.proj], inp: att, weight: p + w.o, bias: rowParallelBias(w.oBias), rows: n, c: d.qDim, oc: c) }
        tensorReduce(a[a.proj], n * c)
        if let drop, dropout.hidden > 0 { drop.mask(site: 1 + 3 * l, p: dropout.hidden).apply(a[a.proj], rows: n, width: c, firstRow: drop.firstRow * t) }
        let h = a[a.h[i]], ln2 = a[a.ln2[i]], up = a[a.up[i]], act = a[a.act[i]]
        timed(.residual) { Kernels.residualForward(out: h, a: x, b: a[a.proj], n: n * c) }
        norm(out: ln2, mean: a[a.mean2[i]], rstd: a[a.rstd2[i]], inp: h, weight: w.norm2, bias: w.norm2Bias, rows: n)
        timed(.matmul) { linearForward(out: up, inp: ln2, weight: p + w.up, bias: w.upBias.map { p + $0 }, rows: n, c: c, oc: f) }
        if let gate = w.gate {
            timed(.matmul) { linearForward(out: a[a.gate[i]], inp: ln2, weight: p + gate, bias: nil, rows: n, c: c, oc: f) }
            timed(.activation) { Kernels.swigluForward(out: act, gate: a[a.gate[i]], up: up, n: n * f) }
        } else {
            timed(.activation) { Kernels.geluForward(out: act, inp: up, n: n * f, tanhApproximation: config.activation == .geluTanh) }
        }
        timed(.matmul) { linearForward(out: a[a.proj], inp: act, weight: p + w.down, bias: rowParallelBias(w.downBias), rows: n, c: f, oc: c) }
        tensorReduce(a[a.proj], n * c)
        if let drop, dropout.hidden > 0 { drop.mask(site: 2 + 3 * l, p: dropout.hidden).apply(a[a.proj], rows: n, width: c, firstRow: drop.firstRow * t) }
        timed(.residual) { Kernels.residualForward(out: a[a.x[i + 1]], a: h, b: a[a.proj], n: n * c) }
    }

    /// The attention-probability dropout of layer `l` (nil without it).
    private func attentionDropout(_ drop: DropoutContext?, layer l: Int) -> AttentionDropout? {
        guard let drop, dropout.attention > 0 else { return nil }
        return AttentionDropout(mask: drop.mask(site: 3 + 3 * l, p: dropout.attention), firstRow: drop.firstRow,
                                firstHead: shard.tensorRank * dims.heads, totalHeads: config.heads)
    }

    /// The bias of a row-parallel layer, added by tensor rank 0 only (the ranks' outputs are summed).
    private func rowParallelBias(_ offset: Int?) -> UnsafePointer<Float>? {
        guard let offset, shard.tensorRank == 0 else { return nil }
        return UnsafePointer(parameters.baseAddress! + offset)
    }

    /// A pipeline stage's output of the slot's last forward pass (batch × seq × hidden), which the next
    /// stage takes as input.
    public func stageOutput(slot: Int) -> UnsafeBufferPointer<Float> {
        guard let a = slots[slot] else { preconditionFailure("no forward pass in slot \(slot)") }
        return UnsafeBufferPointer(start: a[a.x[dims.layers.count]], count: a.batch * a.seq * config.hidden)
    }

    /// After `backward` on a stage after the first: the gradient of the loss with respect to the stage's
    /// input, which the previous stage's backward takes as `outputGradient`.
    public func inputGradient(slot: Int) -> UnsafeBufferPointer<Float> {
        guard let a = slots[slot] else { preconditionFailure("no backward pass in slot \(slot)") }
        return UnsafeBufferPointer(start: a[a.dx], count: a.batch * a.seq * config.hidden)
    }

    /// Logits of the last forward pass, (batch × seq, vocab), when it ran without targets (with targets
    /// the buffer holds the probabilities, then the gradient).
    public var logits: UnsafeBufferPointer<Float>? {
        guard let a = slots.first ?? nil, logitsValid, shard.isLastStage else { return nil }
        return UnsafeBufferPointer(start: a[a.logits], count: a.batch * a.seq * dims.vocab)
    }

    private func embeddingForwardSharded(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, b: Int, t: Int) {
        let c = config.hidden, p = parameters.baseAddress!, wte = p + layout.embedding
        let wpe = shard.tensorRank == 0 ? layout.positions.map { p + $0 } : nil
        let start = dims.vocabStart, end = dims.vocabStart + dims.vocab
        Parallel.forEach(count: b * t, chunkSize: VectorMath.rowChunk(width: c)) { range in
            for i in range {
                let row = out + i * c, token = Int(tokens[i])
                if token >= start && token < end { row.update(from: wte + (token - start) * c, count: c) } else { row.update(repeating: 0, count: c) }
                if let wpe {
                    let w = wpe + (i % t) * c
                    for k in 0..<c { row[k] += w[k] }
                }
            }
        }
    }

    /// Cross-entropy over a vocabulary split across the tensor group: the row maxima, the sums of
    /// exponentials and the target logits are combined over the ranks; each rank keeps the
    /// probabilities of its own vocabulary rows.
    private func crossEntropyForwardSharded(_ a: Activations, targets: UnsafePointer<Int32>, rows n: Int) -> (loss: Float, count: Int) {
        let v = dims.vocab, start = dims.vocabStart, z = a[a.logits]
        let rowMax = a[a.rowMax], rowSum = a[a.rowSum], rowTarget = a[a.rowTarget]
        timed(.crossEntropy) {
            Parallel.forEach(count: n, chunkSize: VectorMath.rowChunk(width: v)) { range in
                for r in range { rowMax[r] = VectorMath.maximum(z + r * v, v) }
            }
        }
        tensorReduce(rowMax, n, .max)
        timed(.crossEntropy) {
            Parallel.forEach(count: n, chunkSize: VectorMath.rowChunk(width: v)) { range in
                for r in range {
                    let target = Int(targets[r]) - start
                    rowTarget[r] = target >= 0 && target < v ? z[r * v + target] : 0
                    rowSum[r] = VectorMath.expSubtracting(rowMax[r], from: z + r * v, into: z + r * v, v)
                }
            }
        }
        tensorReduce(rowSum, n)
        tensorReduce(rowTarget, n)
        return timed(.crossEntropy) {
            Parallel.forEach(count: n, chunkSize: VectorMath.rowChunk(width: v)) { range in
                for r in range {
                    let inv = 1 / rowSum[r], row = z + r * v
                    for i in 0..<v { row[i] *= inv }
                }
            }
            var total = 0.0, count = 0
            for r in 0..<n {
                let target = targets[r]
                guard target != Kernels.ignoreIndex, target >= 0, Int(target) < config.vocabSize else { continue }
                total += Double(-(rowTarget[r] - rowMax[r] - logf(rowSum[r])))
                count += 1
            }
            return (count > 0 ? Float(total / Double(count)) : 0, count)
        }
    }

    private func norm(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                      inp: UnsafePointer<Float>, weight: Int, bias: Int?, rows: Int) {
        let p = parameters.baseAddress!
        if let bias {
            timed(.norm) { Kernels.layerNormForward(out: out, mean: mean, rstd: rstd, inp: inp, weight: p + weight, bias: p + bias,
                                     rows: rows, c: config.hidden, eps: config.normEps) }
        } else {
            timed(.norm) { Kernels.rmsNormForward(out: out, rstd: rstd, inp: inp, weight: p + weight, rows: rows, c: config.hidden, eps: config.normEps) }
        }
    }

    private func normBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                              mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: Int, bias: Int?, rows: Int) {
        let p = parameters.baseAddress!, g = gradients!.baseAddress!
        if let bias {
            timed(.norm) { Kernels.layerNormBackward(dinp: dinp, dweight: g + weight, dbias: g + bias, dout: dout, inp: inp, weight: p + weight,
                                      mean: mean, rstd: rstd, rows: rows, c: config.hidden) }
        } else {
            timed(.norm) { Kernels.rmsNormBackward(dinp: dinp, dweight: g + weight, dout: dout, inp: inp, weight: p + weight, rstd: rstd,
                                    rows: rows, c: config.hidden) }
        }
    }

    // MARK: Backward

    /// Accumulates into `gradients` the gradient of `lossScale × Σ(counted token losses)` for the slot's
    /// last forward pass (which must have had targets, on the last pipeline stage). With
    /// `lossScale = 1 / counted` this is the gradient of the mean loss; gradient accumulation passes
    /// 1 / (counted tokens of all micro-batches). A stage before the last takes the gradient of its
    /// output from the next stage (`outputGradient`, batch × seq × hidden) instead.
    public func backward(lossScale: Float, slot: Int, outputGradient: UnsafePointer<Float>?) {
        guard let state = last[slot], let a = slots[slot] else { preconditionFailure("backward needs a forward pass") }
        let (b, t, tokens) = (state.batch, state.seq, state.tokens)
        precondition(shard.isLastStage ? state.targets != nil : outputGradient != nil,
                     shard.isLastStage ? "backward needs a forward pass with targets" : "a stage before the last needs its output gradient")
        if gradients == nil { zeroGradients() }
        let n = b * t, c = config.hidden, f = dims.ffn, v = dims.vocab, d = dims
        let p = parameters.baseAddress!, g = gradients!.baseAddress!
        let llama = config.arch == .llama
        let tables = llama ? ropeTables(t) : ([], [])
        let first = d.layers.lowerBound
        func zero(_ offset: Int, _ count: Int) { a[offset].update(repeating: 0, count: count) }
        last[slot] = nil   // a second backward would need a new forward pass
        let drop = slotDropout.removeValue(forKey: slot)
        let dx = a[a.dx]
        /// The gradient of a dropped-out branch output: dx ∘ mask, in the `proj` scratch.
        func droppedGradient(site: Int) -> UnsafeMutablePointer<Float> {
            guard let drop, dropout.hidden > 0 else { return dx }
            a[a.proj].update(from: dx, count: n * c)
            drop.mask(site: site, p: dropout.hidden).apply(a[a.proj], rows: n, width: c, firstRow: drop.firstRow * t)
            return a[a.proj]
        }

        if let outputGradient {
            a[a.dx].update(from: outputGradient, count: n * c)
        } else {
            // The probabilities become dlogits in place.
            let dlogits = a[a.logits]
            let start = Int32(d.vocabStart)
            state.targets!.withUnsafeBufferPointer { tg in
                if tensorGroup == nil {
                    timed(.crossEntropy) { Kernels.crossEntropyBackwardInPlace(dlogits, targets: tg.baseAddress!, rows: n, v: v, scale: lossScale) }
                } else {
                    // Targets outside this rank's rows only scale the probabilities.
                    let shifted = tg.map { $0 == Kernels.ignoreIndex ? $0 : ($0 >= start && $0 < start + Int32(v) ? $0 - start : Int32(v)) }
                    timed(.crossEntropy) { crossEntropyBackwardShifted(dlogits, targets: shifted, rows: n, v: v, scale: lossScale) }
                }
            }
            zero(a.dln, n * c)
            timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + layout.head, dbias: nil, dout: dlogits, inp: a[a.lnf],
                                   weight: p + layout.head, rows: n, c: c, oc: v) }
            tensorReduce(a[a.dln], n * c)
            zero(a.dx, n * c)
            normBackward(dinp: a[a.dx], dout: a[a.dln], inp: a[a.x[d.layers.count]], mean: a[a.meanf], rstd: a[a.rstdf],
                         weight: layout.finalNorm, bias: layout.finalNormBias, rows: n)
            // The final norm and an untied head follow the layers in the layout: final from here on.
            gradientsReady?(layout.finalNorm)
        }

        // dx holds the gradient of the residual stream; each block adds its branches' contributions.
        for l in d.layers.reversed() {
            let w = layout.block(l), i = l - first
            // The shared region holds the top layer's values from the forward pass; every other layer's
            // are computed again from its stored input.
            if recomputeLayers && l != d.layers.upperBound - 1 {
                layerForward(l, a, batch: b, seq: t, tables: tables, dropout: drop)
            }
            // x[l+1] = h + down(act): the down projection sees dx; h gets dx through the identity.
            zero(a.dact, n * f)
            let dDown = droppedGradient(site: 2 + 3 * l)
            timed(.matmul) { linearBackward(dinp: a[a.dact], dweight: g + w.down, dbias: w.downBias.map { g + $0 }, dout: dDown,
                                   inp: a[a.act[i]], weight: p + w.down, rows: n, c: f, oc: c) }
            zero(a.dup, n * f)
            if let gate = w.gate {
                zero(a.dgate, n * f)
                timed(.activation) { Kernels.swigluBackward(dgate: a[a.dgate], dup: a[a.dup], dout: a[a.dact], gate: a[a.gate[i]], up: a[a.up[i]], n: n * f) }
                zero(a.dln, n * c)
                timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + gate, dbias: nil, dout: a[a.dgate], inp: a[a.ln2[i]],
                                       weight: p + gate, rows: n, c: c, oc: f) }
            } else {
                timed(.activation) { Kernels.geluBackward(dinp: a[a.dup], inp: a[a.up[i]], dout: a[a.dact], n: n * f,
                                     tanhApproximation: config.activation == .geluTanh) }
                zero(a.dln, n * c)
            }
            timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + w.up, dbias: w.upBias.map { g + $0 }, dout: a[a.dup],
                                   inp: a[a.ln2[i]], weight: p + w.up, rows: n, c: c, oc: f) }
            tensorReduce(a[a.dln], n * c)
            normBackward(dinp: dx, dout: a[a.dln], inp: a[a.h[i]], mean: a[a.mean2[i]], rstd: a[a.rstd2[i]],
                         weight: w.norm2, bias: w.norm2Bias, rows: n)

            // h = x[l] + o(att): dx is now dh.
            zero(a.datt, n * d.qDim)
            let dO = droppedGradient(site: 1 + 3 * l)
            timed(.matmul) { linearBackward(dinp: a[a.datt], dweight: g + w.o, dbias: w.oBias.map { g + $0 }, dout: dO,
                                   inp: a[a.att[i]], weight: p + w.o, rows: n, c: d.qDim, oc: c) }
            zero(a.dq, n * d.qDim)
            zero(a.dk, n * d.kvDim)
            zero(a.dv, n * d.kvDim)
            timed(.attention) { Kernels.attentionBackward(dq: a[a.dq], dk: a[a.dk], dv: a[a.dv], dout: a[a.datt], out: a[a.att[i]], lse: a[a.lse[i]],
                                      q: a[a.q[i]], k: a[a.k[i]], v: a[a.v[i]], b: b, t: t, heads: d.heads,
                                      kvHeads: d.kvHeads, headDim: d.headDim, dropout: attentionDropout(drop, layer: l)) }
            if llama {
                timed(.rope) { Kernels.ropeBackward(a[a.dq], cos: tables.0, sin: tables.1, b: b, t: t, heads: d.heads, headDim: d.headDim) }
                timed(.rope) { Kernels.ropeBackward(a[a.dk], cos: tables.0, sin: tables.1, b: b, t: t, heads: d.kvHeads, headDim: d.headDim) }
            }
            zero(a.dln, n * c)
            let ln1 = a[a.ln1[i]]
            timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + w.q, dbias: w.qBias.map { g + $0 }, dout: a[a.dq], inp: ln1,
                                   weight: p + w.q, rows: n, c: c, oc: d.qDim) }
            timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + w.k, dbias: w.kBias.map { g + $0 }, dout: a[a.dk], inp: ln1,
                                   weight: p + w.k, rows: n, c: c, oc: d.kvDim) }
            timed(.matmul) { linearBackward(dinp: a[a.dln], dweight: g + w.v, dbias: w.vBias.map { g + $0 }, dout: a[a.dv], inp: ln1,
                                   weight: p + w.v, rows: n, c: c, oc: d.kvDim) }
            tensorReduce(a[a.dln], n * c)
            normBackward(dinp: dx, dout: a[a.dln], inp: a[a.x[i]], mean: a[a.mean1[i]], rstd: a[a.rstd1[i]],
                         weight: w.norm1, bias: w.norm1Bias, rows: n)
            if let gradientsReady, let firstTensor = layout.tensors.first(where: { $0.layer == l }) { gradientsReady(firstTensor.offset) }
        }
        if shard.isFirstStage {
            if let drop, dropout.hidden > 0 { drop.mask(site: 0, p: dropout.hidden).apply(dx, rows: n, width: c, firstRow: drop.firstRow * t) }
            tokens.withUnsafeBufferPointer { tok in
                if tensorGroup == nil {
                    timed(.embedding) { Kernels.embeddingBackward(dwte: g + layout.embedding, dwpe: layout.positions.map { g + $0 }, dout: dx,
                                              tokens: tok.baseAddress!, b: b, t: t, c: c) }
                } else {
                    // Only this rank's vocabulary rows; token ids outside them are shifted past its rows.
                    let start = Int32(d.vocabStart)
                    let shifted = tok.map { $0 >= start && $0 < start + Int32(v) ? $0 - start : -1 }
                    timed(.embedding) { embeddingBackwardSharded(dwte: g + layout.embedding, dwpe: layout.positions.map { g + $0 }, dout: dx,
                                                                 tokens: shifted, b: b, t: t) }
                }
            }
        }
        gradientsReady?(0)
    }

    /// dlogits = scale · (probs − onehot(target)) for rows whose target (shifted into this rank's rows)
    /// is scored; a target equal to `v` lies on another rank and only scales the row.
    private func crossEntropyBackwardShifted(_ probs: UnsafeMutablePointer<Float>, targets: [Int32], rows: Int, v: Int, scale: Float) {
        targets.withUnsafeBufferPointer { tg in
            Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: v)) { range in
                for r in range {
                    let t = tg[r], d = probs + r * v
                    guard t != Kernels.ignoreIndex else {
                        d.update(repeating: 0, count: v)
                        continue
                    }
                    for i in 0..<v { d[i] *= scale }
                    if Int(t) < v { d[Int(t)] -= scale }
                }
            }
        }
    }

    /// The embedding backward of a vocabulary shard: tokens are this rank's row indices, −1 elsewhere.
    private func embeddingBackwardSharded(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                          tokens: [Int32], b: Int, t: Int) {
        let c = config.hidden
        tokens.withUnsafeBufferPointer { tok in
            for i in 0..<(b * t) {
                let d = dout + i * c
                if tok[i] >= 0 {
                    let w = dwte + Int(tok[i]) * c
                    for k in 0..<c { w[k] += d[k] }
                }
            }
        }
        if let dwpe {
            for i in 0..<(b * t) {
                let w = dwpe + (i % t) * c, d = dout + i * c
                for k in 0..<c { w[k] += d[k] }
            }
        }
    }
}

/// Standard normal samples from SplitMix64 by Box–Muller, one independent stream per (seed, stream).
struct NormalSampler {
    private var rng: SplitMix64
    private var spare: Float?

    init(seed: UInt64, stream: UInt64) { rng = SplitMix64(seed: SplitMix64.finalize(seed) ^ SplitMix64.finalize(stream &+ SplitMix64.increment)) }

    mutating func next() -> Float {
        if let s = spare { spare = nil; return s }
        // Two uniforms in (0, 1]; the product form keeps log away from 0.
        let u1 = (Double(rng.next() >> 11) + 1) / 9_007_199_254_740_992
        let u2 = Double(rng.next() >> 11) / 9_007_199_254_740_992
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2))
    }
}

/// Wall time per kernel family, accumulated over forward and backward passes.
public final class KernelProfile: @unchecked Sendable {
    public enum Kernel: String, CaseIterable, Sendable {
        case embedding, norm, matmul, rope, attention, activation, residual, crossEntropy = "cross_entropy", optimizer, communication
    }
    public private(set) var nanoseconds: [Kernel: UInt64] = [:]
    public init() {}
    public func add(_ kernel: Kernel, nanoseconds n: UInt64) { nanoseconds[kernel, default: 0] += n }
    public func seconds(_ kernel: Kernel) -> Double { Double(nanoseconds[kernel] ?? 0) / 1e9 }
    public func reset() { nanoseconds = [:] }
}

/// Dropout probabilities of a model: `hidden` on the embeddings' output and on each attention and MLP
/// output before it joins the residual stream, `attention` on the attention probabilities (Megatron-LM's
/// `--hidden-dropout`, `--attention-dropout`; transformers' GPT-2 `embd_pdrop`/`resid_pdrop`, `attn_pdrop`).
public struct DropoutRates: Sendable, Equatable {
    public var hidden: Float
    public var attention: Float
    public init(hidden: Float, attention: Float) {
        self.hidden = hidden
        self.attention = attention
    }
    public static let none = DropoutRates(hidden: 0, attention: 0)
    public var isActive: Bool { hidden > 0 || attention > 0 }
}

/// What makes a training forward pass's dropout masks: the seed, the optimizer step and the global
/// index of the micro-batch's first row within the step (rows of earlier micro-batches, on every
/// data-parallel rank, come first), so that masks do not depend on the micro-batch size, the layout or
/// a resume.
public struct DropoutContext: Sendable, Equatable {
    public var seed: UInt64
    public var step: Int
    public var firstRow: Int
    public init(seed: UInt64, step: Int, firstRow: Int) {
        self.seed = seed
        self.step = step
        self.firstRow = firstRow
    }

    /// The mask of dropout site `site` (0: embeddings; 1 + 3l, 2 + 3l, 3 + 3l: layer l's attention output,
    /// MLP output and attention probabilities).
    public func mask(site: Int, p: Float) -> DropoutMask { DropoutMask(seed: seed, step: step, site: site, p: p) }
}
