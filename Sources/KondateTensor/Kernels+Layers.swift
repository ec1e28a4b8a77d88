import Foundation

extension Kernels {
    // MARK: Embedding

    /// out (BT, C) = wte[token] (+ wpe[t] when positions are learned, GPT-2).
    public static func embeddingForward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
                                        wpe: UnsafePointer<Float>?, b: Int, t: Int, c: Int) {
        for i in 0..<(b * t) {
            let row = out + i * c
            row.update(from: wte + Int(tokens[i]) * c, count: c)
            if let wpe {
                let p = wpe + (i % t) * c
                for k in 0..<c { row[k] += p[k] }
            }
        }
    }

    /// Accumulates dwte rows (and dwpe) from dout (BT, C).
    public static func embeddingBackward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                         tokens: UnsafePointer<Int32>, b: Int, t: Int, c: Int) {
        for i in 0..<(b * t) {
            let d = dout + i * c, w = dwte + Int(tokens[i]) * c
            for k in 0..<c { w[k] += d[k] }
            if let dwpe {
                let p = dwpe + (i % t) * c
                for k in 0..<c { p[k] += d[k] }
            }
        }
    }

    // MARK: LayerNorm (GPT-2)

    /// out = (x − mean) · rstd · weight + bias per row; mean and rstd (rows) saved for backward.
    public static func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                        inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                        rows: Int, c: Int, eps: Float) {
        for r in 0..<rows {
            let x = inp + r * c, y = out + r * c
            var m: Float = 0
            for i in 0..<c { m += x[i] }
            m /= Float(c)
            var v: Float = 0
            for i in 0..<c { let d = x[i] - m; v += d * d }
            v /= Float(c)
            let s = 1 / (v + eps).squareRoot()
            for i in 0..<c { y[i] = (x[i] - m) * s * weight[i] + bias[i] }
            mean[r] = m
            rstd[r] = s
        }
    }

    /// Accumulates dinp, dweight, dbias for `layerNormForward`.
    public static func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, c: Int) {
        for r in 0..<rows {
            let x = inp + r * c, dy = dout + r * c, dx = dinp + r * c
            let m = mean[r], s = rstd[r]
            // dnorm_i = dy_i·w_i;  dx_i = s·(dnorm_i − mean(dnorm) − norm_i·mean(dnorm·norm))
            var meanD: Float = 0, meanDN: Float = 0
            for i in 0..<c {
                let norm = (x[i] - m) * s
                let dn = dy[i] * weight[i]
                meanD += dn
                meanDN += dn * norm
            }
            meanD /= Float(c)
            meanDN /= Float(c)
            for i in 0..<c {
                let norm = (x[i] - m) * s
                dbias[i] += dy[i]
                dweight[i] += norm * dy[i]
                dx[i] += s * (dy[i] * weight[i] - meanD - norm * meanDN)
            }
        }
    }

    // MARK: Activations

    static let sqrt2OverPi: Float = 0.797_884_560_802_865_4

    /// GELU, exact (erf) or the tanh approximation (GPT-2's `gelu_new`).
    public static func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, tanhApproximation: Bool) {
        if tanhApproximation {
            for i in 0..<n {
                let x = inp[i]
                out[i] = 0.5 * x * (1 + tanhf(sqrt2OverPi * (x + 0.044715 * x * x * x)))
            }
        } else {
            for i in 0..<n {
                let x = inp[i]
                out[i] = 0.5 * x * (1 + erff(x * 0.707_106_781_186_547_6))
            }
        }
    }

    /// Accumulates dinp += dout · gelu′(inp).
    public static func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, n: Int,
                                    tanhApproximation: Bool) {
        if tanhApproximation {
            for i in 0..<n {
                let x = inp[i]
                let u = sqrt2OverPi * (x + 0.044715 * x * x * x)
                let th = tanhf(u)
                let sech2 = 1 - th * th
                let grad = 0.5 * (1 + th) + 0.5 * x * sech2 * sqrt2OverPi * (1 + 3 * 0.044715 * x * x)
                dinp[i] += dout[i] * grad
            }
        } else {
            for i in 0..<n {
                let x = inp[i]
                let cdf = 0.5 * (1 + erff(x * 0.707_106_781_186_547_6))
                let pdf = expf(-0.5 * x * x) * 0.398_942_280_401_432_7
                dinp[i] += dout[i] * (cdf + x * pdf)
            }
        }
    }

    /// SwiGLU: out = silu(gate) · up, elementwise over n values.
    public static func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let a = gate[i]
            out[i] = a / (1 + expf(-a)) * up[i]
        }
    }

    /// Accumulates dgate and dup for `swigluForward`.
    public static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let a = gate[i]
            let sigma = 1 / (1 + expf(-a))
            let silu = a * sigma
            dup[i] += dout[i] * silu
            dgate[i] += dout[i] * up[i] * sigma * (1 + a * (1 - sigma))
        }
    }

    // MARK: Residual

    /// out = a + b.
    public static func residualForward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }

    /// da += dout, db += dout.
    public static func residualBackward(da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            da[i] += dout[i]
            db[i] += dout[i]
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
        let half = headDim / 2
        for bt in 0..<(b * t) {
            let p = bt % t
            for h in 0..<heads {
                let v = x + (bt * heads + h) * headDim
                for i in 0..<half {
                    let c = cos[p * half + i], s = sin[p * half + i]
                    let x1 = v[i], x2 = v[i + half]
                    v[i] = x1 * c - x2 * s
                    v[i + half] = x2 * c + x1 * s
                }
            }
        }
    }

    /// In place on the gradient: the transpose rotation.
    public static func ropeBackward(_ dx: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                    b: Int, t: Int, heads: Int, headDim: Int) {
        let half = headDim / 2
        for bt in 0..<(b * t) {
            let p = bt % t
            for h in 0..<heads {
                let v = dx + (bt * heads + h) * headDim
                for i in 0..<half {
                    let c = cos[p * half + i], s = sin[p * half + i]
                    let d1 = v[i], d2 = v[i + half]
                    v[i] = d1 * c + d2 * s
                    v[i + half] = d2 * c - d1 * s
                }
            }
        }
    }
}
