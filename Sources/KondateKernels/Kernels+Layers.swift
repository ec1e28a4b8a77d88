import Foundation

extension Kernels {
    // MARK: Embedding

    /// out (BT, C) = wte[token] (+ wpe[t] when positions are learned, GPT-2).
    public static func embeddingForward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
                                        wpe: UnsafePointer<Float>?, b: Int, t: Int, c: Int) {
        Parallel.forEach(count: b * t, chunkSize: VectorMath.rowChunk(width: c)) { range in
            for i in range {
                let row = out + i * c
                row.update(from: wte + Int(tokens[i]) * c, count: c)
                if let wpe {
                    let p = wpe + (i % t) * c
                    for k in 0..<c { row[k] += p[k] }
                }
            }
        }
    }

    /// Token groups for `embeddingBackward`: token k belongs to group k mod this.
    static let embeddingGroups = 16

    /// Accumulates dwte rows (and dwpe) from dout (BT, C). Parallel over groups of tokens (and ranges
    /// of positions): each group scans all rows and adds those of its own tokens, so rows that share a
    /// token (or a position) still add into it in row order.
    public static func embeddingBackward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                         tokens: UnsafePointer<Int32>, b: Int, t: Int, c: Int) {
        let groups = embeddingGroups
        let positionChunk = VectorMath.rowChunk(width: b * c)
        let positionChunks = dwpe == nil ? 0 : Parallel.chunkCount(t, positionChunk)
        Parallel.forEach(chunks: groups + positionChunks) { item in
            if item < groups {
                for i in 0..<(b * t) {
                    let token = Int(tokens[i])
                    guard token % groups == item else { continue }
                    let d = dout + i * c, w = dwte + token * c
                    for k in 0..<c { w[k] += d[k] }
                }
            } else if let dwpe {
                let first = (item - groups) * positionChunk
                for p in first..<min(t, first + positionChunk) {
                    let w = dwpe + p * c
                    for bi in 0..<b {
                        let d = dout + (bi * t + p) * c
                        for k in 0..<c { w[k] += d[k] }
                    }
                }
            }
        }
    }

    // MARK: LayerNorm (GPT-2)

    /// out = (x − mean) · rstd · weight + bias per row; mean and rstd (rows) saved for backward.
    public static func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                        inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                        rows: Int, c: Int, eps: Float) {
        Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: c)) { range in
            for r in range {
                let x = inp + r * c, y = out + r * c
                let m = VectorMath.sum(x, c) / Float(c)
                let v = VectorMath.sumOfSquaredDeviations(x, c, from: m) / Float(c)
                let s = 1 / (v + eps).squareRoot()
                for i in 0..<c { y[i] = (x[i] - m) * s * weight[i] + bias[i] }
                mean[r] = m
                rstd[r] = s
            }
        }
    }

    /// Accumulates dinp, dweight, dbias for `layerNormForward`.
    public static func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, c: Int) {
        let chunkRows = VectorMath.reductionRowChunk(rows: rows, width: c)
        let chunks = Parallel.chunkCount(rows, chunkRows)
        // Per chunk: c partials of dweight, then c of dbias.
        VectorMath.withScratch(chunks * 2 * c) { partials in
            Parallel.forEach(chunks: chunks) { chunk in
                let dw = partials + chunk * 2 * c, db = dw + c
                for r in (chunk * chunkRows)..<min(rows, (chunk + 1) * chunkRows) {
                    let x = inp + r * c, dy = dout + r * c, dx = dinp + r * c
                    let m = mean[r], s = rstd[r]
                    // dnorm_i = dy_i·w_i;  dx_i = s·(dnorm_i − mean(dnorm) − norm_i·mean(dnorm·norm))
                    let meanD = VectorMath.dot(dy, weight, c) / Float(c)
                    let meanDN = VectorMath.reduce(c, { i in
                        VectorMath.load(dy + i) * VectorMath.load(weight + i) * ((VectorMath.load(x + i) - m) * s)
                    }, { i in dy[i] * weight[i] * ((x[i] - m) * s) }) / Float(c)
                    for i in 0..<c {
                        let norm = (x[i] - m) * s
                        db[i] += dy[i]
                        dw[i] += norm * dy[i]
                        dx[i] += s * (dy[i] * weight[i] - meanD - norm * meanDN)
                    }
                }
            }
            VectorMath.withScratch(2 * c) { totals in
                VectorMath.addPartials(partials, chunks: chunks, width: 2 * c, into: totals)
                for i in 0..<c {
                    dweight[i] += totals[i]
                    dbias[i] += totals[c + i]
                }
            }
        }
    }

    // MARK: Activations

    static let sqrt2OverPi: Float = 0.797_884_560_802_865_4

    /// GELU, exact (erf) or the tanh approximation (GPT-2's `gelu_new`).
    public static func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, tanhApproximation: Bool) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            let x = inp + range.lowerBound, y = out + range.lowerBound
            var i = 0
            if tanhApproximation {
                while i < range.count {
                    let w = min(4, range.count - i)
                    VectorMath.store(VectorMath.geluTanh(VectorMath.load(x + i, w)), y + i, w)
                    i += 4
                }
            } else {
                while i < range.count {
                    let w = min(4, range.count - i)
                    VectorMath.store(VectorMath.geluErf(VectorMath.load(x + i, w)), y + i, w)
                    i += 4
                }
            }
        }
    }

    /// Accumulates dinp += dout · gelu′(inp).
    public static func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, n: Int,
                                    tanhApproximation: Bool) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            let x = inp + range.lowerBound, dy = dout + range.lowerBound, dx = dinp + range.lowerBound
            var i = 0
            if tanhApproximation {
                while i < range.count {
                    let w = min(4, range.count - i)
                    let grad = VectorMath.geluTanhDerivative(VectorMath.load(x + i, w))
                    VectorMath.store(VectorMath.load(dx + i, w) + VectorMath.load(dy + i, w) * grad, dx + i, w)
                    i += 4
                }
            } else {
                while i < range.count {
                    let w = min(4, range.count - i)
                    let grad = VectorMath.geluErfDerivative(VectorMath.load(x + i, w))
                    VectorMath.store(VectorMath.load(dx + i, w) + VectorMath.load(dy + i, w) * grad, dx + i, w)
                    i += 4
                }
            }
        }
    }

    /// SwiGLU: out = silu(gate) · up, elementwise over n values.
    public static func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            let o = range.lowerBound
            var i = o
            while i < range.upperBound {
                let w = min(4, range.upperBound - i)
                let a = VectorMath.load(gate + i, w)
                VectorMath.store(a / (1 + VectorMath.exp(-a)) * VectorMath.load(up + i, w), out + i, w)
                i += 4
            }
        }
    }

    /// Accumulates dgate and dup for `swigluForward`.
    public static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            var i = range.lowerBound
            while i < range.upperBound {
                let w = min(4, range.upperBound - i)
                let a = VectorMath.load(gate + i, w), dy = VectorMath.load(dout + i, w)
                let sigma = 1 / (1 + VectorMath.exp(-a))
                let silu = a * sigma
                VectorMath.store(VectorMath.load(dup + i, w) + dy * silu, dup + i, w)
                let g = dy * VectorMath.load(up + i, w) * sigma * (1 + a * (1 - sigma))
                VectorMath.store(VectorMath.load(dgate + i, w) + g, dgate + i, w)
                i += 4
            }
        }
    }

    // MARK: Residual

    /// out = a + b.
    public static func residualForward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            for i in range { out[i] = a[i] + b[i] }
        }
    }

    /// da += dout, db += dout.
    public static func residualBackward(da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        Parallel.forEach(count: n, chunkSize: VectorMath.elementChunk) { range in
            for i in range {
                da[i] += dout[i]
                db[i] += dout[i]
            }
        }
    }

    // MARK: RoPE (Hugging Face `rotate_half`)

    /// cos and sin tables (T, headDim/2): angle(t, i) = t · θ^(−2i/headDim), as HF `LlamaRotaryEmbedding`
    /// (inverse frequencies computed in float, then the product in float).
    public static func ropeTables(t: Int, headDim: Int, theta: Float) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2
        var cosT = [Float](repeating: 0, count: t * half), sinT = [Float](repeating: 0, count: t * half)
        let inv = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(headDim)) }
        for p in 0..<t {
            for i in 0..<half {
                let angle = Float(p) * inv[i]
                cosT[p * half + i] = cosf(angle)
                sinT[p * half + i] = sinf(angle)
            }
        }
        return (cosT, sinT)
    }

    /// In place on x (B, T, heads, headDim): x·cos + rotate_half(x)·sin, where
    /// rotate_half(x) = (−x[d/2:], x[:d/2]).
    public static func ropeForward(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                   b: Int, t: Int, heads: Int, headDim: Int) {
        rotate(x, cos: cos, sin: sin, b: b, t: t, heads: heads, headDim: headDim, sign: 1)
    }

    /// In place on the gradient: the transpose rotation.
    public static func ropeBackward(_ dx: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                    b: Int, t: Int, heads: Int, headDim: Int) {
        rotate(dx, cos: cos, sin: sin, b: b, t: t, heads: heads, headDim: headDim, sign: -1)
    }

    /// The RoPE rotation by +angle (`sign` 1) or −angle (`sign` −1): with s = sign·sin,
    /// (x1, x2) → (x1·cos − x2·s, x2·cos + x1·s). Parallel over (batch, time) rows.
    @inline(__always)
    static func rotate(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                       b: Int, t: Int, heads: Int, headDim: Int, sign: Float) {
        let half = headDim / 2
        Parallel.forEach(count: b * t, chunkSize: VectorMath.rowChunk(width: heads * headDim)) { range in
            for bt in range {
                let p = bt % t
                let cp = cos + p * half, sp = sin + p * half
                for h in 0..<heads {
                    let v = x + (bt * heads + h) * headDim
                    for i in 0..<half {
                        let c = cp[i], s = sign * sp[i]
                        let x1 = v[i], x2 = v[i + half]
                        v[i] = x1 * c - x2 * s
                        v[i + half] = x2 * c + x1 * s
                    }
                }
            }
        }
    }
}
