import Foundation

/// CPU kernels in the style of llm.c: flat buffers, explicit shapes in comments, each backward beside
/// its forward and accumulating (`+=`) into gradient buffers, so a model's backward can run layer by
/// layer in exact reverse order. B = batch, T = time, C = channels, OC = output channels, V = vocab.
///
/// The elementwise and row-wise kernels run on `Parallel` in chunks whose boundaries depend only on the
/// shapes, and reductions over rows go through per-chunk partials added in chunk order, so every
/// kernel gives bitwise identical results for any `Parallel.threads`.
public enum Kernels {
    // MARK: Matmul

    /// out (BT, OC) = inp (BT, C) · weightᵀ (OC, C) + bias (OC), as torch.nn.Linear.
    public static func matmulForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, rows: Int, c: Int, oc: Int, precision: MatmulPrecision = .fp32) {
        if let bias {
            Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: oc)) { range in
                for r in range { (out + r * oc).update(from: bias, count: oc) }
            }
        }
        gemm(precision, transA: false, transB: true, m: rows, n: oc, k: c, a: inp, lda: c, b: weight, ldb: c,
             beta: bias == nil ? 0 : 1, c: out, ldc: oc)
    }

    /// Accumulates dinp (BT, C) += dout · weight, dweight (OC, C) += doutᵀ · inp, dbias (OC) += Σ dout.
    public static func matmulBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                                      dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      rows: Int, c: Int, oc: Int, precision: MatmulPrecision = .fp32) {
        switch precision {
        case .fp32:
            if let dinp {
                gemm(.fp32, transA: false, transB: false, m: rows, n: c, k: oc, a: dout, lda: oc, b: weight, ldb: c, beta: 1, c: dinp, ldc: c)
            }
            gemm(.fp32, transA: true, transB: false, m: oc, n: c, k: rows, a: dout, lda: oc, b: inp, ldb: c, beta: 1, c: dweight, ldc: c)
        case .bf16:
            // dout is an operand of both products: rounded once.
            withBF16([BF16Operand(values: dout, count: rows * oc), BF16Operand(values: weight, count: oc * c),
                      BF16Operand(values: inp, count: rows * c)]) { route, p in
                if let dinp {
                    bf16Product(route, transA: false, transB: false, m: rows, n: c, k: oc, a: p[0], lda: oc, b: p[1], ldb: c, accumulate: true,
                                c: dinp, ldc: c)
                }
                bf16Product(route, transA: true, transB: false, m: oc, n: c, k: rows, a: p[0], lda: oc, b: p[2], ldb: c, accumulate: true,
                            c: dweight, ldc: c)
            }
        }
        if let dbias {
            // Parallel over output columns; each column adds its rows in order.
            Parallel.forEach(count: oc, chunkSize: VectorMath.columnChunk) { cols in
                let d = dbias + cols.lowerBound
                for r in 0..<rows {
                    let row = dout + r * oc + cols.lowerBound
                    for o in 0..<cols.count { d[o] += row[o] }
                }
            }
        }
    }

    // MARK: RMSNorm (LLaMA)

    /// out = inp / sqrt(mean(inp²) + eps) · weight, per row of C; rstd (rows) saved for backward.
    public static func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                      weight: UnsafePointer<Float>, rows: Int, c: Int, eps: Float) {
        Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: c)) { range in
            for r in range {
                let x = inp + r * c, y = out + r * c
                let s = 1 / (VectorMath.sumOfSquares(x, c) / Float(c) + eps).squareRoot()
                rstd[r] = s
                for i in 0..<c { y[i] = x[i] * s * weight[i] }
            }
        }
    }

    /// Accumulates dinp and dweight for `rmsNormForward`.
    public static func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, c: Int) {
        let chunkRows = VectorMath.reductionRowChunk(rows: rows, width: c)
        let chunks = Parallel.chunkCount(rows, chunkRows)
        VectorMath.withScratch(chunks * c) { partials in
            Parallel.forEach(chunks: chunks) { chunk in
                let dw = partials + chunk * c
                for r in (chunk * chunkRows)..<min(rows, (chunk + 1) * chunkRows) {
                    let x = inp + r * c, dy = dout + r * c, dx = dinp + r * c
                    let s = rstd[r]
                    // y_i = x_i·s·w_i;  dx_j = s·w_j·dy_j − s³/C · x_j · Σ_i dy_i·w_i·x_i
                    let k = s * s * s / Float(c) * VectorMath.dot(dy, weight, x, c)
                    for i in 0..<c {
                        dw[i] += dy[i] * x[i] * s
                        dx[i] += s * weight[i] * dy[i] - k * x[i]
                    }
                }
            }
            VectorMath.addPartials(partials, chunks: chunks, width: c, into: dweight)
        }
    }

    // MARK: Softmax cross-entropy

    /// Mean cross-entropy of logits (rows, V) against targets (rows), skipping targets equal to
    /// `ignoreIndex`; writes the softmax probabilities into `probs` for the backward pass (`probs`
    /// may be `logits` itself, to overwrite the logits in place). Returns (mean loss, number of counted rows). Computed in Double for the sum, as PyTorch's
    /// reduction does not lose precision over many rows.
    public static func crossEntropyForward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                           rows: Int, v: Int, ignoreIndex: Int32 = -100) -> (loss: Float, count: Int) {
        let chunkRows = VectorMath.rowChunk(width: v)
        let chunks = Parallel.chunkCount(rows, chunkRows)
        var totals = [Double](repeating: 0, count: chunks), counts = [Int](repeating: 0, count: chunks)
        totals.withUnsafeMutableBufferPointer { totals in
            counts.withUnsafeMutableBufferPointer { counts in
                Parallel.forEach(chunks: chunks) { chunk in
                    var total = 0.0, count = 0
                    for r in (chunk * chunkRows)..<min(rows, (chunk + 1) * chunkRows) {
                        let z = logits + r * v, p = probs + r * v
                        let t = targets[r]
                        let scored = t != ignoreIndex && t >= 0 && Int(t) < v
                        // Read before the row is overwritten: `probs` may alias `logits`.
                        let targetLogit = scored ? z[Int(t)] : 0
                        let maxValue = VectorMath.maximum(z, v)
                        let sum = VectorMath.expSubtracting(maxValue, from: z, into: p, v)
                        let inv = 1 / sum
                        for i in 0..<v { p[i] *= inv }
                        guard scored else { continue }
                        total += Double(-(targetLogit - maxValue - logf(sum)))
                        count += 1
                    }
                    totals[chunk] = total
                    counts[chunk] = count
                }
            }
        }
        // Chunk partials added in chunk order.
        var total = 0.0, count = 0
        for chunk in 0..<chunks {
            total += totals[chunk]
            count += counts[chunk]
        }
        return (count > 0 ? Float(total / Double(count)) : 0, count)
    }

    /// Turns probabilities (rows, V) into the logits' gradient in place: scale · (probs − onehot(target))
    /// for counted rows, zero for rows whose target is ignored. Saves a separate zeroed gradient buffer
    /// when nothing else contributes to dlogits.
    public static func crossEntropyBackwardInPlace(_ probs: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                                   rows: Int, v: Int, scale: Float, ignoreIndex: Int32 = -100) {
        Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: v)) { range in
            for r in range {
                let t = targets[r], d = probs + r * v
                guard t != ignoreIndex, t >= 0, Int(t) < v else {
                    d.update(repeating: 0, count: v)
                    continue
                }
                for i in 0..<v { d[i] *= scale }
                d[Int(t)] -= scale
            }
        }
    }

    /// Accumulates dlogits (rows, V) += scale · (probs − onehot(target)) for counted rows, where
    /// `scale` is typically 1 / (counted rows of the whole batch).
    public static func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                            rows: Int, v: Int, scale: Float, ignoreIndex: Int32 = -100) {
        Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: v)) { range in
            for r in range {
                let t = targets[r]
                guard t != ignoreIndex, t >= 0, Int(t) < v else { continue }
                let p = probs + r * v, d = dlogits + r * v
                for i in 0..<v { d[i] += scale * p[i] }
                d[Int(t)] -= scale
            }
        }
    }
}

extension Kernels {
    /// The label value that is not scored (PyTorch's `ignore_index` default).
    public static let ignoreIndex: Int32 = -100
}
