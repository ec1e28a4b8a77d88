import Foundation

/// CPU kernels in the style of llm.c: flat buffers, explicit shapes in comments, each backward beside
/// its forward and accumulating (`+=`) into gradient buffers, so a model's backward can run layer by
/// layer in exact reverse order. B = batch, T = time, C = channels, OC = output channels, V = vocab.
public enum Kernels {
    // MARK: Matmul

    /// out (BT, OC) = inp (BT, C) · weightᵀ (OC, C) + bias (OC), as torch.nn.Linear.
    public static func matmulForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, rows: Int, c: Int, oc: Int) {
        if let bias {
            for r in 0..<rows { (out + r * oc).update(from: bias, count: oc) }
        }
        BLAS.sgemm(transA: false, transB: true, m: rows, n: oc, k: c, alpha: 1, a: inp, lda: c, b: weight, ldb: c,
                   beta: bias == nil ? 0 : 1, c: out, ldc: oc)
    }

    /// Accumulates dinp (BT, C) += dout · weight, dweight (OC, C) += doutᵀ · inp, dbias (OC) += Σ dout.
    public static func matmulBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                                      dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      rows: Int, c: Int, oc: Int) {
        if let dinp {
            BLAS.sgemm(transA: false, transB: false, m: rows, n: c, k: oc, alpha: 1, a: dout, lda: oc, b: weight, ldb: c,
                       beta: 1, c: dinp, ldc: c)
        }
        BLAS.sgemm(transA: true, transB: false, m: oc, n: c, k: rows, alpha: 1, a: dout, lda: oc, b: inp, ldb: c,
                   beta: 1, c: dweight, ldc: c)
        if let dbias {
            for r in 0..<rows {
                let row = dout + r * oc
                for o in 0..<oc { dbias[o] += row[o] }
            }
        }
    }

    // MARK: RMSNorm (LLaMA)

    /// out = inp / sqrt(mean(inp²) + eps) · weight, per row of C; rstd (rows) saved for backward.
    public static func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                      weight: UnsafePointer<Float>, rows: Int, c: Int, eps: Float) {
        for r in 0..<rows {
            let x = inp + r * c, y = out + r * c
            var sumSquares: Float = 0
            for i in 0..<c { sumSquares += x[i] * x[i] }
            let s = 1 / (sumSquares / Float(c) + eps).squareRoot()
            rstd[r] = s
            for i in 0..<c { y[i] = x[i] * s * weight[i] }
        }
    }

    /// Accumulates dinp and dweight for `rmsNormForward`.
    public static func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, c: Int) {
        for r in 0..<rows {
            let x = inp + r * c, dy = dout + r * c, dx = dinp + r * c
            let s = rstd[r]
            // y_i = x_i·s·w_i;  dx_j = s·w_j·dy_j − s³/C · x_j · Σ_i dy_i·w_i·x_i
            var dot: Float = 0
            for i in 0..<c { dot += dy[i] * weight[i] * x[i] }
            let k = s * s * s / Float(c) * dot
            for i in 0..<c {
                dweight[i] += dy[i] * x[i] * s
                dx[i] += s * weight[i] * dy[i] - k * x[i]
            }
        }
    }

    // MARK: Softmax cross-entropy

    /// Mean cross-entropy of logits (rows, V) against targets (rows), skipping targets equal to
    /// `ignoreIndex`; writes the softmax probabilities into `probs` for the backward pass.
    /// Returns (mean loss, number of counted rows). Computed in Double for the sum, as PyTorch's
    /// reduction does not lose precision over many rows.
    public static func crossEntropyForward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                           rows: Int, v: Int, ignoreIndex: Int32 = -100) -> (loss: Float, count: Int) {
        var total = 0.0
        var count = 0
        for r in 0..<rows {
            let z = logits + r * v, p = probs + r * v
            var maxValue = -Float.infinity
            for i in 0..<v { maxValue = max(maxValue, z[i]) }
            var sum: Float = 0
            for i in 0..<v {
                let e = expf(z[i] - maxValue)
                p[i] = e
                sum += e
            }
            let inv = 1 / sum
            for i in 0..<v { p[i] *= inv }
            let t = targets[r]
            guard t != ignoreIndex, t >= 0, Int(t) < v else { continue }
            total += Double(-(z[Int(t)] - maxValue - logf(sum)))
            count += 1
        }
        return (count > 0 ? Float(total / Double(count)) : 0, count)
    }

    /// Accumulates dlogits (rows, V) += scale · (probs − onehot(target)) for counted rows, where
    /// `scale` is typically 1 / (counted rows of the whole batch).
    public static func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                            rows: Int, v: Int, scale: Float, ignoreIndex: Int32 = -100) {
        for r in 0..<rows {
            let t = targets[r]
            guard t != ignoreIndex, t >= 0, Int(t) < v else { continue }
            let p = probs + r * v, d = dlogits + r * v
            for i in 0..<v { d[i] += scale * p[i] }
            d[Int(t)] -= scale
        }
    }
}
