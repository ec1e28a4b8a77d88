import Foundation
import KondateSupport

/// A decoder-only transformer (LLaMA or GPT-2) on the CPU: one allocation for the parameters, one for
/// their gradients and one for the activations; forward and a hand-written backward that runs the
/// layers' backward kernels in exactly the reverse order of the forward pass (llm.c's structure).
///
/// The model is single-rank: parallelism (data, tensor, pipeline) is applied around it.
public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// All parameters, laid out as `layout` says.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// Gradients, same layout; allocated on first use (inference never needs them).
    public private(set) var gradients: UnsafeMutableBufferPointer<Float>?
    private var activations: Activations?
    /// When set, forward and backward add each kernel's wall time to it (`kondate bench train`).
    public var profile: KernelProfile?

    public init(config: ModelConfig) throws(ModelError) {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        parameters = .allocate(capacity: layout.count)
        parameters.initialize(repeating: 0)
    }

    deinit {
        parameters.deallocate()
        gradients?.deallocate()
        activations?.deallocate()
    }

    public var parameterCount: Int { layout.count }

    @inline(__always)
    private func timed<T>(_ kernel: KernelProfile.Kernel, _ body: () -> T) -> T {
        guard let profile else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { profile.add(kernel, nanoseconds: DispatchTime.now().uptimeNanoseconds - start) }
        return body()
    }

    // MARK: Initialisation

    /// Deterministic initialisation from `seed`: matrices and embeddings normal(0, init_std); the
    /// output projections of each block (o_proj / down_proj, GPT-2's c_proj) normal(0, init_std/√(2·layers))
    /// as in GPT-2 and Megatron's scaled init; norm weights 1; biases 0. Each tensor draws from its own
    /// stream (seed, tensor index), so the values do not depend on how tensors are laid out or sharded.
    public func initialize(seed: UInt64) {
        let scaled = config.initStd / Float(2 * config.layers).squareRoot()
        for (i, t) in layout.tensors.enumerated() {
            let p = parameters.baseAddress! + t.offset
            switch t.role {
            case .norm: p.update(repeating: 1, count: t.count)
            case .bias: p.update(repeating: 0, count: t.count)
            case .embedding, .positions, .matrix, .head, .outputProjection:
                var rng = NormalSampler(seed: seed, stream: UInt64(i))
                let std = t.role == .outputProjection ? scaled : config.initStd
                for j in 0..<t.count { p[j] = std * rng.next() }
            }
        }
    }

    public func zeroGradients() {
        if gradients == nil { gradients = .allocate(capacity: layout.count) }
        gradients!.update(repeating: 0)
    }

    // MARK: Activations

    /// Per-layer saved activations and the shared scratch of the backward pass, as offsets into one
    /// allocation sized for `rows = batch × seq`.
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

        init(config m: ModelConfig, batch: Int, seq: Int) {
            self.batch = batch
            self.seq = seq
            let n = batch * seq, c = m.hidden, f = m.ffn
            var total = 0
            func take(_ count: Int) -> Int { defer { total += count }; return total }
            for _ in 0..<m.layers {
                x.append(take(n * c)); ln1.append(take(n * c)); mean1.append(take(n)); rstd1.append(take(n))
                q.append(take(n * m.qDim)); k.append(take(n * m.kvDim)); v.append(take(n * m.kvDim))
                att.append(take(n * m.qDim)); lse.append(take(n * m.heads))
                h.append(take(n * c)); ln2.append(take(n * c)); mean2.append(take(n)); rstd2.append(take(n))
                up.append(take(n * f)); gate.append(m.arch == .llama ? take(n * f) : 0); act.append(take(n * f))
            }
            x.append(take(n * c))
            lnf = take(n * c); meanf = take(n); rstdf = take(n)
            logits = take(n * m.vocabSize); proj = take(n * c)
            dx = take(n * c); dln = take(n * c); dq = take(n * m.qDim); dk = take(n * m.kvDim); dv = take(n * m.kvDim)
            datt = take(n * m.qDim); dup = take(n * f); dgate = take(n * f); dact = take(n * f)
            buffer = .allocate(capacity: total)
            buffer.initialize(repeating: 0)
        }

        func deallocate() { buffer.deallocate() }
        subscript(_ offset: Int) -> UnsafeMutablePointer<Float> { buffer.baseAddress! + offset }
    }

    private func activations(batch: Int, seq: Int) -> Activations {
        if let a = activations, a.batch == batch, a.seq == seq { return a }
        activations?.deallocate()
        let a = Activations(config: config, batch: batch, seq: seq)
        activations = a
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

    /// Whether the logits buffer holds the logits of the last forward pass.
    private var logitsValid = false

    /// The state of the last forward pass, needed by `backward`.
    private var last: (batch: Int, seq: Int, tokens: [Int32], targets: [Int32]?, counted: Int)?

    /// Runs the model on `tokens` (batch × seq, row-major). With `targets` (same shape; −100 marks a
    /// position that is not scored), returns the mean cross-entropy over the counted positions and their
    /// number. Without targets the loss is nil and only the logits are computed.
    @discardableResult
    public func forward(tokens: [Int32], targets: [Int32]? = nil, batch b: Int, seq t: Int) throws(ModelError) -> (loss: Float, count: Int)? {
        precondition(tokens.count == b * t, "tokens must hold batch × seq values")
        if t > config.maxPositions { throw .sequenceTooLong(length: t, limit: config.maxPositions) }
        for (i, token) in tokens.enumerated() where token < 0 || Int(token) >= config.vocabSize {
            throw .tokenOutOfRange(token: token, position: i, vocabSize: config.vocabSize)
        }
        let a = activations(batch: b, seq: t)
        let n = b * t, c = config.hidden, f = config.ffn, v = config.vocabSize
        let p = parameters.baseAddress!
        let llama = config.arch == .llama
        let tables = llama ? ropeTables(t) : ([], [])

        tokens.withUnsafeBufferPointer { tok in
            timed(.embedding) { Kernels.embeddingForward(out: a[a.x[0]], tokens: tok.baseAddress!, wte: p + layout.embedding,
                                     wpe: layout.positions.map { p + $0 }, b: b, t: t, c: c) }
        }
        for l in 0..<config.layers {
            let w = layout.block(l)
            let x = a[a.x[l]], ln1 = a[a.ln1[l]], q = a[a.q[l]], k = a[a.k[l]], vv = a[a.v[l]], att = a[a.att[l]]
            norm(out: ln1, mean: a[a.mean1[l]], rstd: a[a.rstd1[l]], inp: x, weight: w.norm1, bias: w.norm1Bias, rows: n)
            timed(.matmul) { Kernels.matmulForward(out: q, inp: ln1, weight: p + w.q, bias: w.qBias.map { p + $0 }, rows: n, c: c, oc: config.qDim) }
            timed(.matmul) { Kernels.matmulForward(out: k, inp: ln1, weight: p + w.k, bias: w.kBias.map { p + $0 }, rows: n, c: c, oc: config.kvDim) }
            timed(.matmul) { Kernels.matmulForward(out: vv, inp: ln1, weight: p + w.v, bias: w.vBias.map { p + $0 }, rows: n, c: c, oc: config.kvDim) }
            if llama {
                timed(.rope) { Kernels.ropeForward(q, cos: tables.0, sin: tables.1, b: b, t: t, heads: config.heads, headDim: config.headDim) }
                timed(.rope) { Kernels.ropeForward(k, cos: tables.0, sin: tables.1, b: b, t: t, heads: config.kvHeads, headDim: config.headDim) }
            }
            timed(.attention) { Kernels.attentionForward(out: att, lse: a[a.lse[l]], q: q, k: k, v: vv, b: b, t: t, heads: config.heads,
                                     kvHeads: config.kvHeads, headDim: config.headDim) }
            timed(.matmul) { Kernels.matmulForward(out: a[a.proj], inp: att, weight: p + w.o, bias: w.oBias.map { p + $0 }, rows: n, c: config.qDim, oc: c) }
            let h = a[a.h[l]], ln2 = a[a.ln2[l]], up = a[a.up[l]], act = a[a.act[l]]
            timed(.residual) { Kernels.residualForward(out: h, a: x, b: a[a.proj], n: n * c) }
            norm(out: ln2, mean: a[a.mean2[l]], rstd: a[a.rstd2[l]], inp: h, weight: w.norm2, bias: w.norm2Bias, rows: n)
            timed(.matmul) { Kernels.matmulForward(out: up, inp: ln2, weight: p + w.up, bias: w.upBias.map { p + $0 }, rows: n, c: c, oc: f) }
            if let gate = w.gate {
                timed(.matmul) { Kernels.matmulForward(out: a[a.gate[l]], inp: ln2, weight: p + gate, bias: nil, rows: n, c: c, oc: f) }
                timed(.activation) { Kernels.swigluForward(out: act, gate: a[a.gate[l]], up: up, n: n * f) }
            } else {
                timed(.activation) { Kernels.geluForward(out: act, inp: up, n: n * f, tanhApproximation: config.activation == .geluTanh) }
            }
            timed(.matmul) { Kernels.matmulForward(out: a[a.proj], inp: act, weight: p + w.down, bias: w.downBias.map { p + $0 }, rows: n, c: f, oc: c) }
            timed(.residual) { Kernels.residualForward(out: a[a.x[l + 1]], a: h, b: a[a.proj], n: n * c) }
        }
        norm(out: a[a.lnf], mean: a[a.meanf], rstd: a[a.rstdf], inp: a[a.x[config.layers]], weight: layout.finalNorm,
             bias: layout.finalNormBias, rows: n)
        timed(.matmul) { Kernels.matmulForward(out: a[a.logits], inp: a[a.lnf], weight: p + layout.head, bias: nil, rows: n, c: c, oc: v) }

        guard let targets else {
            last = (b, t, tokens, nil, 0)
            logitsValid = true
            return nil
        }
        logitsValid = false
        precondition(targets.count == n, "targets must hold batch × seq values")
        // The probabilities overwrite the logits: the backward turns them into dlogits in place.
        let result = targets.withUnsafeBufferPointer { tg in
            timed(.crossEntropy) { Kernels.crossEntropyForward(probs: a[a.logits], logits: a[a.logits], targets: tg.baseAddress!, rows: n, v: v) }
        }
        last = (b, t, tokens, targets, result.count)
        return result
    }

    /// Logits of the last forward pass, (batch × seq, vocab), when it ran without targets (with targets
    /// the buffer holds the probabilities, then the gradient).
    public var logits: UnsafeBufferPointer<Float>? {
        guard let a = activations, logitsValid else { return nil }
        return UnsafeBufferPointer(start: a[a.logits], count: a.batch * a.seq * config.vocabSize)
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

    /// Accumulates into `gradients` the gradient of `lossScale × Σ(counted token losses)` for the last
    /// forward pass (which must have had targets). With `lossScale = 1 / counted` this is the gradient
    /// of the mean loss; gradient accumulation passes 1 / (counted tokens of all micro-batches).
    public func backward(lossScale: Float) {
        guard let (b, t, tokens, targetsOrNil, _) = last, let targets = targetsOrNil, let a = activations else {
            preconditionFailure("backward needs a forward pass with targets")
        }
        if gradients == nil { zeroGradients() }
        let n = b * t, c = config.hidden, f = config.ffn, v = config.vocabSize
        let p = parameters.baseAddress!, g = gradients!.baseAddress!
        let llama = config.arch == .llama
        let tables = llama ? ropeTables(t) : ([], [])
        func zero(_ offset: Int, _ count: Int) { a[offset].update(repeating: 0, count: count) }

        // The probabilities become dlogits in place.
        let dlogits = a[a.logits]
        targets.withUnsafeBufferPointer { tg in
            timed(.crossEntropy) { Kernels.crossEntropyBackwardInPlace(dlogits, targets: tg.baseAddress!, rows: n, v: v, scale: lossScale) }
        }
        last = (b, t, tokens, nil, 0)   // a second backward would need a new forward pass
        zero(a.dln, n * c)
        timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + layout.head, dbias: nil, dout: dlogits, inp: a[a.lnf],
                               weight: p + layout.head, rows: n, c: c, oc: v) }
        zero(a.dx, n * c)
        normBackward(dinp: a[a.dx], dout: a[a.dln], inp: a[a.x[config.layers]], mean: a[a.meanf], rstd: a[a.rstdf],
                     weight: layout.finalNorm, bias: layout.finalNormBias, rows: n)

        // dx holds the gradient of the residual stream; each block adds its branches' contributions.
        let dx = a[a.dx]
        for l in (0..<config.layers).reversed() {
            let w = layout.block(l)
            // x[l+1] = h + down(act): the down projection sees dx; h gets dx through the identity.
            zero(a.dact, n * f)
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dact], dweight: g + w.down, dbias: w.downBias.map { g + $0 }, dout: dx,
                                   inp: a[a.act[l]], weight: p + w.down, rows: n, c: f, oc: c) }
            zero(a.dup, n * f)
            if let gate = w.gate {
                zero(a.dgate, n * f)
                timed(.activation) { Kernels.swigluBackward(dgate: a[a.dgate], dup: a[a.dup], dout: a[a.dact], gate: a[a.gate[l]], up: a[a.up[l]], n: n * f) }
                zero(a.dln, n * c)
                timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + gate, dbias: nil, dout: a[a.dgate], inp: a[a.ln2[l]],
                                       weight: p + gate, rows: n, c: c, oc: f) }
            } else {
                timed(.activation) { Kernels.geluBackward(dinp: a[a.dup], inp: a[a.up[l]], dout: a[a.dact], n: n * f,
                                     tanhApproximation: config.activation == .geluTanh) }
                zero(a.dln, n * c)
            }
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + w.up, dbias: w.upBias.map { g + $0 }, dout: a[a.dup],
                                   inp: a[a.ln2[l]], weight: p + w.up, rows: n, c: c, oc: f) }
            normBackward(dinp: dx, dout: a[a.dln], inp: a[a.h[l]], mean: a[a.mean2[l]], rstd: a[a.rstd2[l]],
                         weight: w.norm2, bias: w.norm2Bias, rows: n)

            // h = x[l] + o(att): dx is now dh.
            zero(a.datt, n * config.qDim)
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.datt], dweight: g + w.o, dbias: w.oBias.map { g + $0 }, dout: dx,
                                   inp: a[a.att[l]], weight: p + w.o, rows: n, c: config.qDim, oc: c) }
            zero(a.dq, n * config.qDim)
            zero(a.dk, n * config.kvDim)
            zero(a.dv, n * config.kvDim)
            timed(.attention) { Kernels.attentionBackward(dq: a[a.dq], dk: a[a.dk], dv: a[a.dv], dout: a[a.datt], out: a[a.att[l]], lse: a[a.lse[l]],
                                      q: a[a.q[l]], k: a[a.k[l]], v: a[a.v[l]], b: b, t: t, heads: config.heads,
                                      kvHeads: config.kvHeads, headDim: config.headDim) }
            if llama {
                timed(.rope) { Kernels.ropeBackward(a[a.dq], cos: tables.0, sin: tables.1, b: b, t: t, heads: config.heads, headDim: config.headDim) }
                timed(.rope) { Kernels.ropeBackward(a[a.dk], cos: tables.0, sin: tables.1, b: b, t: t, heads: config.kvHeads, headDim: config.headDim) }
            }
            zero(a.dln, n * c)
            let ln1 = a[a.ln1[l]]
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + w.q, dbias: w.qBias.map { g + $0 }, dout: a[a.dq], inp: ln1,
                                   weight: p + w.q, rows: n, c: c, oc: config.qDim) }
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + w.k, dbias: w.kBias.map { g + $0 }, dout: a[a.dk], inp: ln1,
                                   weight: p + w.k, rows: n, c: c, oc: config.kvDim) }
            timed(.matmul) { Kernels.matmulBackward(dinp: a[a.dln], dweight: g + w.v, dbias: w.vBias.map { g + $0 }, dout: a[a.dv], inp: ln1,
                                   weight: p + w.v, rows: n, c: c, oc: config.kvDim) }
            normBackward(dinp: dx, dout: a[a.dln], inp: a[a.x[l]], mean: a[a.mean1[l]], rstd: a[a.rstd1[l]],
                         weight: w.norm1, bias: w.norm1Bias, rows: n)
        }
        tokens.withUnsafeBufferPointer { tok in
            timed(.embedding) { Kernels.embeddingBackward(dwte: g + layout.embedding, dwpe: layout.positions.map { g + $0 }, dout: dx,
                                      tokens: tok.baseAddress!, b: b, t: t, c: c) }
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
        case embedding, norm, matmul, rope, attention, activation, residual, crossEntropy = "cross_entropy", optimizer
    }
    public private(set) var nanoseconds: [Kernel: UInt64] = [:]
    public init() {}
    public func add(_ kernel: Kernel, nanoseconds n: UInt64) { nanoseconds[kernel, default: 0] += n }
    public func seconds(_ kernel: Kernel) -> Double { Double(nanoseconds[kernel] ?? 0) / 1e9 }
    public func reset() { nanoseconds = [:] }
}
