import Foundation
import KondateKernels
import KondateSupport

/// Incremental decoding with a key/value cache: each new token costs one pass over the weights and
/// attention over the cached positions, instead of re-running the whole prefix.
public final class DecodingSession: @unchecked Sendable {
    public let model: Transformer
    public let capacity: Int
    /// Tokens consumed so far (the next token's position).
    public private(set) var length = 0
    private let keys: UnsafeMutableBufferPointer<Float>     // (layers, capacity, kvDim)
    private let values: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>
    private let rope: (cos: [Float], sin: [Float])
    /// Offsets into `scratch`.
    private let x: Int, ln: Int, q: Int, att: Int, proj: Int, up: Int, gate: Int, act: Int, scores: Int, mean: Int, rstd: Int
    public let logits: UnsafeMutableBufferPointer<Float>

    public init(model: Transformer, capacity: Int? = nil) {
        self.model = model
        let c = model.config
        self.capacity = min(capacity ?? c.maxPositions, c.maxPositions)
        keys = .allocate(capacity: c.layers * self.capacity * c.kvDim)
        values = .allocate(capacity: c.layers * self.capacity * c.kvDim)
        var total = 0
        func take(_ n: Int) -> Int { defer { total += n }; return total }
        x = take(c.hidden); ln = take(c.hidden); q = take(c.qDim); att = take(c.qDim); proj = take(c.hidden)
        up = take(c.ffn); gate = take(c.ffn); act = take(c.ffn); scores = take(self.capacity); mean = take(1); rstd = take(1)
        scratch = .allocate(capacity: total)
        scratch.initialize(repeating: 0)
        logits = .allocate(capacity: c.vocabSize)
        rope = c.arch == .llama ? Kernels.ropeTables(t: self.capacity, headDim: c.headDim, theta: c.ropeTheta) : ([], [])
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        scratch.deallocate()
        logits.deallocate()
    }

    public func reset() { length = 0 }

    /// Starts over with `prompt` and generates up to `maxNewTokens` tokens after it, drawing each from
    /// `sampler`; stops before `endOfSequence` (not included) or when the last position has been
    /// predicted. The prompt must fit `capacity`.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler, endOfSequence: Int32?) throws(ModelError) -> [Int32] {
        reset()
        var generated: [Int32] = []
        var logits: UnsafeBufferPointer<Float>?
        for id in prompt { logits = try append(id) }
        while generated.count < maxNewTokens, let l = logits {
            let next = sampler.next(l)
            if next == endOfSequence { break }
            generated.append(next)
            logits = length < capacity ? try append(next) : nil
        }
        return generated
    }

    /// Feeds one token and returns the logits for the next position.
    @discardableResult
    public func append(_ token: Int32) throws(ModelError) -> UnsafeBufferPointer<Float> {
        let c = model.config
        guard length < capacity else { throw .sequenceTooLong(length: length + 1, limit: capacity) }
        guard token >= 0, Int(token) < c.vocabSize else { throw .tokenOutOfRange(token: token, position: length, vocabSize: c.vocabSize) }
        let pos = length
        let p = model.parameters.baseAddress!, s = scratch.baseAddress!, layout = model.layout
        let h = c.hidden, hd = c.headDim, group = c.heads / c.kvHeads
        var tok = token
        Kernels.embeddingForward(out: s + x, tokens: &tok, wte: p + layout.embedding, wpe: nil, b: 1, t: 1, c: h)
        if let wpe = layout.positions {
            for i in 0..<h { s[x + i] += p[wpe + pos * h + i] }
        }
        for l in 0..<c.layers {
            let w = layout.block(l)
            norm(out: s + ln, inp: s + x, weight: w.norm1, bias: w.norm1Bias)
            let kCache = keys.baseAddress! + (l * capacity + pos) * c.kvDim
            let vCache = values.baseAddress! + (l * capacity + pos) * c.kvDim
            Kernels.matmulForward(out: s + q, inp: s + ln, weight: p + w.q, bias: w.qBias.map { p + $0 }, rows: 1, c: h, oc: c.qDim)
            Kernels.matmulForward(out: kCache, inp: s + ln, weight: p + w.k, bias: w.kBias.map { p + $0 }, rows: 1, c: h, oc: c.kvDim)
            Kernels.matmulForward(out: vCache, inp: s + ln, weight: p + w.v, bias: w.vBias.map { p + $0 }, rows: 1, c: h, oc: c.kvDim)
            if c.arch == .llama {
                rope.cos.withUnsafeBufferPointer { cosT in
                    rope.sin.withUnsafeBufferPointer { sinT in
                        let off = pos * (hd / 2)
                        Kernels.ropeForward(s + q, cos: cosT.baseAddress! + off, sin: sinT.baseAddress! + off, b: 1, t: 1, heads: c.heads, headDim: hd)
                        Kernels.ropeForward(kCache, cos: cosT.baseAddress! + off, sin: sinT.baseAddress! + off, b: 1, t: 1, heads: c.kvHeads, headDim: hd)
                    }
                }
            }
            let scale = 1 / Float(hd).squareRoot()
            let kBase = keys.baseAddress! + l * capacity * c.kvDim, vBase = values.baseAddress! + l * capacity * c.kvDim
            for head in 0..<c.heads {
                let kh = head / group
                let qh = s + q + head * hd, sc = s + scores
                var maxScore = -Float.infinity
                for j in 0...pos {
                    let kj = kBase + j * c.kvDim + kh * hd
                    var dot: Float = 0
                    for d in 0..<hd { dot += qh[d] * kj[d] }
                    sc[j] = dot * scale
                    maxScore = max(maxScore, sc[j])
                }
                var sum: Float = 0
                for j in 0...pos { sc[j] = expf(sc[j] - maxScore); sum += sc[j] }
                let o = s + att + head * hd
                for d in 0..<hd { o[d] = 0 }
                for j in 0...pos {
                    let weight = sc[j] / sum, vj = vBase + j * c.kvDim + kh * hd
                    for d in 0..<hd { o[d] += weight * vj[d] }
                }
            }
            Kernels.matmulForward(out: s + proj, inp: s + att, weight: p + w.o, bias: w.oBias.map { p + $0 }, rows: 1, c: c.qDim, oc: h)
            for i in 0..<h { s[x + i] += s[proj + i] }
            norm(out: s + ln, inp: s + x, weight: w.norm2, bias: w.norm2Bias)
            Kernels.matmulForward(out: s + up, inp: s + ln, weight: p + w.up, bias: w.upBias.map { p + $0 }, rows: 1, c: h, oc: c.ffn)
            if let g = w.gate {
                Kernels.matmulForward(out: s + gate, inp: s + ln, weight: p + g, bias: nil, rows: 1, c: h, oc: c.ffn)
                Kernels.swigluForward(out: s + act, gate: s + gate, up: s + up, n: c.ffn)
            } else {
                Kernels.geluForward(out: s + act, inp: s + up, n: c.ffn, tanhApproximation: c.activation == .geluTanh)
            }
            Kernels.matmulForward(out: s + proj, inp: s + act, weight: p + w.down, bias: w.downBias.map { p + $0 }, rows: 1, c: c.ffn, oc: h)
            for i in 0..<h { s[x + i] += s[proj + i] }
        }
        norm(out: s + ln, inp: s + x, weight: layout.finalNorm, bias: layout.finalNormBias)
        Kernels.matmulForward(out: logits.baseAddress!, inp: s + ln, weight: p + layout.head, bias: nil, rows: 1, c: h, oc: c.vocabSize)
        length += 1
        return UnsafeBufferPointer(logits)
    }

    private func norm(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: Int, bias: Int?) {
        let p = model.parameters.baseAddress!, s = scratch.baseAddress!, c = model.config
        if let bias {
            Kernels.layerNormForward(out: out, mean: s + mean, rstd: s + rstd, inp: inp, weight: p + weight, bias: p + bias, rows: 1, c: c.hidden, eps: c.normEps)
        } else {
            Kernels.rmsNormForward(out: out, rstd: s + rstd, inp: inp, weight: p + weight, rows: 1, c: c.hidden, eps: c.normEps)
        }
    }
}

/// Next-token choice: greedy at temperature 0, otherwise softmax(logits / T) restricted to the
/// smallest set of most likely tokens whose probability reaches `topP` (nucleus sampling), drawn
/// from a seeded generator so a seed reproduces the text.
public struct Sampler: Sendable {
    public var temperature: Double
    public var topP: Double
    private var rng: SplitMix64

    public init(temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        rng = SplitMix64(seed: seed)
    }

    public mutating func next(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        let maxLogit = Double(logits.max() ?? 0)
        var probabilities = logits.enumerated().map { (index: $0.offset, p: exp((Double($0.element) - maxLogit) / temperature)) }
        let total = probabilities.reduce(0) { $0 + $1.p }
        probabilities.sort { $0.p != $1.p ? $0.p > $1.p : $0.index < $1.index }
        var kept = 0, mass = 0.0
        for entry in probabilities {
            kept += 1
            mass += entry.p / total
            if mass >= topP { break }
        }
        let nucleus = probabilities.prefix(kept)
        let nucleusMass = nucleus.reduce(0) { $0 + $1.p }
        var u = Double(rng.next() >> 11) / 9_007_199_254_740_992 * nucleusMass
        for entry in nucleus {
            u -= entry.p
            if u < 0 { return Int32(entry.index) }
        }
        return Int32(nucleus.last!.index)
    }
}
