import Foundation

extension Kernels {
    /// Causal scaled-dot-product attention with grouped-query heads, flash-style: the (T, T) matrix is
    /// never stored; only the per-row log-sum-exp is kept, and the backward recomputes probabilities.
    ///
    /// q (B, T, NH, hd), k and v (B, T, NKV, hd), out (B, T, NH, hd), lse (B, NH, T).
    /// Query head h reads key/value head h / (NH / NKV). Scale 1/√hd.
    public static func attentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                        b: Int, t: Int, heads: Int, kvHeads: Int, headDim hd: Int) {
        let scale = 1 / Float(hd).squareRoot()
        let group = heads / kvHeads
        var scores = [Float](repeating: 0, count: t)
        for bi in 0..<b {
            for h in 0..<heads {
                let kh = h / group
                for i in 0..<t {
                    let qi = q + ((bi * t + i) * heads + h) * hd
                    var maxScore = -Float.infinity
                    for j in 0...i {
                        let kj = k + ((bi * t + j) * kvHeads + kh) * hd
                        var s: Float = 0
                        for d in 0..<hd { s += qi[d] * kj[d] }
                        s *= scale
                        scores[j] = s
                        maxScore = max(maxScore, s)
                    }
                    var sum: Float = 0
                    for j in 0...i {
                        scores[j] = expf(scores[j] - maxScore)
                        sum += scores[j]
                    }
                    let o = out + ((bi * t + i) * heads + h) * hd
                    for d in 0..<hd { o[d] = 0 }
                    let inv = 1 / sum
                    for j in 0...i {
                        let p = scores[j] * inv
                        let vj = v + ((bi * t + j) * kvHeads + kh) * hd
                        for d in 0..<hd { o[d] += p * vj[d] }
                    }
                    lse[(bi * heads + h) * t + i] = maxScore + logf(sum)
                }
            }
        }
    }

    /// Accumulates dq, dk, dv for `attentionForward`, recomputing the probabilities from q, k and lse.
    public static func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                         dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                         b: Int, t: Int, heads: Int, kvHeads: Int, headDim hd: Int) {
        let scale = 1 / Float(hd).squareRoot()
        let group = heads / kvHeads
        var probs = [Float](repeating: 0, count: t)
        for bi in 0..<b {
            for h in 0..<heads {
                let kh = h / group
                for i in 0..<t {
                    let row = (bi * t + i) * heads + h
                    let qi = q + row * hd, doi = dout + row * hd, oi = out + row * hd, dqi = dq + row * hd
                    let l = lse[(bi * heads + h) * t + i]
                    // D = dO · O (= Σ_j p_j · (dO · v_j)).
                    var delta: Float = 0
                    for d in 0..<hd { delta += doi[d] * oi[d] }
                    for j in 0...i {
                        let kj = k + ((bi * t + j) * kvHeads + kh) * hd
                        var s: Float = 0
                        for d in 0..<hd { s += qi[d] * kj[d] }
                        probs[j] = expf(s * scale - l)
                    }
                    for j in 0...i {
                        let base = ((bi * t + j) * kvHeads + kh) * hd
                        let kj = k + base, vj = v + base, dkj = dk + base, dvj = dv + base
                        let p = probs[j]
                        var dp: Float = 0
                        for d in 0..<hd {
                            dvj[d] += p * doi[d]
                            dp += doi[d] * vj[d]
                        }
                        let ds = p * (dp - delta) * scale
                        for d in 0..<hd {
                            dqi[d] += ds * kj[d]
                            dkj[d] += ds * qi[d]
                        }
                    }
                }
            }
        }
    }
}
