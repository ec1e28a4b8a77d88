import Foundation

extension Kernels {
    /// Query rows per block in the attention kernels. Each block computes scores only against the keys
    /// up to its last row, so most of the masked upper triangle is never computed.
    static let attentionBlock = 64

    /// Causal scaled-dot-product attention with grouped-query heads, flash-style: the (T, T) matrix is
    /// never stored; only the per-row log-sum-exp is kept, and the backward recomputes probabilities.
    ///
    /// q (B, T, NH, hd), k and v (B, T, NKV, hd), out (B, T, NH, hd), lse (B, NH, T).
    /// Query head h reads key/value head h / (NH / NKV). Scale 1/√hd.
    ///
    /// Per (batch, head, block of query rows): S = scale · Q Kᵀ over the keys up to the block's last
    /// row (sgemm on the strided head slices), a causal softmax per row, then O = P V. Blocks run in
    /// parallel with single-threaded BLAS and a (block × T) scratch each; every block writes only its
    /// own rows of `out` and `lse`, so the result does not depend on the thread count.
    public static func attentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                        b: Int, t: Int, heads: Int, kvHeads: Int, headDim hd: Int, dropout: AttentionDropout? = nil) {
        let scale = 1 / Float(hd).squareRoot()
        let group = heads / kvHeads
        let qStride = heads * hd, kvStride = kvHeads * hd
        let blocks = Parallel.chunkCount(t, attentionBlock)
        BLAS.singleThreaded {
            Parallel.forEach(chunks: b * heads * blocks) { item in
                // The last blocks cost the most; hand them out first.
                let block = blocks - 1 - item % blocks
                let h = (item / blocks) % heads, bi = item / (blocks * heads)
                let i0 = block * attentionBlock, i1 = min(t, i0 + attentionBlock), rows = i1 - i0
                let kv = (bi * t * kvHeads + h / group) * hd
                let rowOffset = ((bi * t + i0) * heads + h) * hd
                VectorMath.withScratch(rows * i1, zeroed: false) { s in
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: i1, k: hd, alpha: scale, a: q + rowOffset, lda: qStride,
                               b: k + kv, ldb: kvStride, beta: 0, c: s, ldc: i1)
                    for r in 0..<rows {
                        let row = s + r * i1, n = i0 + r + 1
                        let maxScore = VectorMath.maximum(row, n)
                        let sum = VectorMath.expSubtracting(maxScore, from: row, into: row, n)
                        let inv = 1 / sum
                        if let dropout {
                            // O = (P ∘ mask / (1 − p)) V; the log-sum-exp is that of P, before dropout.
                            let key = dropout.rowKey(bi: bi, h: h, i: i0 + r, t: t)
                            for j in 0..<n { row[j] *= inv * dropout.mask.factor(key + j) }
                        } else {
                            for j in 0..<n { row[j] *= inv }
                        }
                        (row + n).update(repeating: 0, count: i1 - n)
                        lse[(bi * heads + h) * t + i0 + r] = maxScore + logf(sum)
                    }
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: i1, alpha: 1, a: s, lda: i1,
                               b: v + kv, ldb: kvStride, beta: 0, c: out + rowOffset, ldc: qStride)
                }
            }
        }
    }

    /// Accumulates dq, dk, dv for `attentionForward`, recomputing the probabilities from q, k and lse.
    ///
    /// Per (batch, key/value head): for each query head of the group in order, and each block of query
    /// rows in order, P = exp(scale · Q Kᵀ − lse) (causal), dV += Pᵀ dO, dP = dO Vᵀ,
    /// dS = P ∘ (dP − rowsum(dO ∘ O)) · scale, dQ += dS K, dK += dSᵀ Q. A work item owns its rows of
    /// dk and dv and its heads' rows of dq, and adds into them in a fixed order, so work items run in
    /// parallel (single-threaded BLAS, two (block × T) scratch matrices each) with results that do not
    /// depend on the thread count.
    public static func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                         dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                         b: Int, t: Int, heads: Int, kvHeads: Int, headDim hd: Int, dropout: AttentionDropout? = nil) {
        let scale = 1 / Float(hd).squareRoot()
        let group = heads / kvHeads
        let qStride = heads * hd, kvStride = kvHeads * hd
        let blocks = Parallel.chunkCount(t, attentionBlock)
        let capacity = min(t, attentionBlock) * t
        BLAS.singleThreaded {
            Parallel.forEach(chunks: b * kvHeads) { item in
                let bi = item / kvHeads, kh = item % kvHeads
                let kv = (bi * t * kvHeads + kh) * hd
                VectorMath.withScratch(2 * capacity, zeroed: false) { scratch in
                    let p = scratch, ds = scratch + capacity
                    for h in (kh * group)..<((kh + 1) * group) {
                        for block in 0..<blocks {
                            let i0 = block * attentionBlock, i1 = min(t, i0 + attentionBlock), rows = i1 - i0
                            let rowOffset = ((bi * t + i0) * heads + h) * hd
                            let qBlock = q + rowOffset, doBlock = dout + rowOffset, oBlock = out + rowOffset
                            // P (rows, i1) from the scores and the saved log-sum-exp; dP = dO Vᵀ.
                            BLAS.sgemm(transA: false, transB: true, m: rows, n: i1, k: hd, alpha: scale, a: qBlock, lda: qStride,
                                       b: k + kv, ldb: kvStride, beta: 0, c: p, ldc: i1)
                            BLAS.sgemm(transA: false, transB: true, m: rows, n: i1, k: hd, alpha: 1, a: doBlock, lda: qStride,
                                       b: v + kv, ldb: kvStride, beta: 0, c: ds, ldc: i1)
                            for r in 0..<rows {
                                let pRow = p + r * i1, dsRow = ds + r * i1, n = i0 + r + 1
                                _ = VectorMath.expSubtracting(lse[(bi * heads + h) * t + i0 + r], from: pRow, into: pRow, n)
                                (pRow + n).update(repeating: 0, count: i1 - n)
                                // D = dO · O (= Σ_j p_j · (dO · v_j)).
                                let delta = VectorMath.dot(doBlock + r * qStride, oBlock + r * qStride, hd)
                                if let dropout {
                                    // With Z = P ∘ M (M: mask / (1 − p)): dP = (dO Vᵀ) ∘ M, and D = rowsum(dO ∘ O) still
                                    // equals rowsum(dP ∘ P); dV takes Z.
                                    let key = dropout.rowKey(bi: bi, h: h, i: i0 + r, t: t)
                                    for j in 0..<n {
                                        let m = dropout.mask.factor(key + j)
                                        dsRow[j] = pRow[j] * (dsRow[j] * m - delta) * scale
                                        pRow[j] *= m
                                    }
                                } else {
                                    for j in 0..<n { dsRow[j] = pRow[j] * (dsRow[j] - delta) * scale }
                                }
                                (dsRow + n).update(repeating: 0, count: i1 - n)
                            }
                            BLAS.sgemm(transA: true, transB: false, m: i1, n: hd, k: rows, alpha: 1, a: p, lda: i1,
                                       b: doBlock, ldb: qStride, beta: 1, c: dv + kv, ldc: kvStride)
                            BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: i1, alpha: 1, a: ds, lda: i1,
                                       b: k + kv, ldb: kvStride, beta: 1, c: dq + rowOffset, ldc: qStride)
                            BLAS.sgemm(transA: true, transB: false, m: i1, n: hd, k: rows, alpha: 1, a: ds, lda: i1,
                                       b: qBlock, ldb: qStride, beta: 1, c: dk + kv, ldc: kvStride)
                        }
                    }
                }
            }
        }
    }
}
