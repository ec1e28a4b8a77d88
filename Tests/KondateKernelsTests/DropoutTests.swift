import Foundation
import Testing
@testable import KondateKernels

@Suite("Dropout masks and attention dropout")
struct DropoutTests {
    @Test func masksAreSeededAndHaveTheirRate() {
        let mask = DropoutMask(seed: 1, step: 3, site: 2, p: 0.25)
        let n = 200_000
        let kept = (0..<n).filter { mask.factor($0) != 0 }.count
        // Binomial(n, 0.75): the standard deviation is about 194 elements.
        #expect(abs(Double(kept) / Double(n) - 0.75) < 0.005, "\(kept)")
        #expect((0..<n).allSatisfy { mask.factor($0) == 0 || mask.factor($0) == 1 / Float(0.75) })
        // Another step, site or seed gives another mask; the same key gives the same mask.
        for other in [DropoutMask(seed: 1, step: 4, site: 2, p: 0.25), DropoutMask(seed: 1, step: 3, site: 5, p: 0.25),
                      DropoutMask(seed: 2, step: 3, site: 2, p: 0.25)] {
            #expect((0..<1000).contains { mask.factor($0) != other.factor($0) })
        }
        #expect((0..<1000).allSatisfy { mask.factor($0) == DropoutMask(seed: 1, step: 3, site: 2, p: 0.25).factor($0) })
        // Rows of a shard mask as the same rows of the whole.
        var whole = [Float](repeating: 1, count: 6 * 10), part = [Float](repeating: 1, count: 2 * 10)
        mask.apply(&whole, rows: 6, width: 10, firstRow: 0)
        mask.apply(&part, rows: 2, width: 10, firstRow: 3)
        #expect(Array(whole[30..<50]) == part)
    }

    /// Attention with dropout on the probabilities against a double-precision reference that applies the
    /// same mask, and its gradients against finite differences of that reference.
    @Test(arguments: [(4, 4), (4, 2)])
    func attentionDropout(heads: Int, kvHeads: Int) {
        let (b, t, hd) = (2, 7, 3)
        var rng = Rand(state: UInt64(30 + kvHeads))
        let q = rng.array(b * t * heads * hd), k = rng.array(b * t * kvHeads * hd), v = rng.array(b * t * kvHeads * hd)
        let g = rng.array(b * t * heads * hd)
        let group = heads / kvHeads
        // A shard: rows from 5, heads from 4 of 12, as a data- and tensor-parallel rank sees them.
        let dropout = AttentionDropout(mask: DropoutMask(seed: 9, step: 2, site: 6, p: 0.3), firstRow: 5, firstHead: 4, totalHeads: 12)
        func reference(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            var total = 0.0
            for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
                let kh = h / group
                var s = [Double]()
                for j in 0...i {
                    var dotp = 0.0
                    for d in 0..<hd { dotp += q[((bi * t + i) * heads + h) * hd + d] * k[((bi * t + j) * kvHeads + kh) * hd + d] }
                    s.append(dotp / Double(hd).squareRoot())
                }
                let m = s.max()!
                let e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                let key = (((5 + bi) * 12 + 4 + h) * t + i) * t
                for d in 0..<hd {
                    var o = 0.0
                    for j in 0...i { o += e[j] / z * Double(dropout.mask.factor(key + j)) * v[((bi * t + j) * kvHeads + kh) * hd + d] }
                    total += o * g[((bi * t + i) * heads + h) * hd + d]
                }
            } } }
            return total
        }
        let qf = q.map(Float.init), kf = k.map(Float.init), vf = v.map(Float.init), gf = g.map(Float.init)
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: b * heads * t)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        Kernels.attentionForward(out: &out, lse: &lse, q: qf, k: kf, v: vf, b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd,
                                 dropout: dropout)
        Kernels.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: gf, out: out, lse: lse, q: qf, k: kf, v: vf,
                                  b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd, dropout: dropout)
        let forward = zip(out, g).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(abs(forward - reference(q, k, v)) < 1e-4)
        #expect(maxRelativeError(dq, numericGradient(q) { reference($0, k, v) }) < 1e-3)
        #expect(maxRelativeError(dk, numericGradient(k) { reference(q, $0, v) }) < 1e-3)
        #expect(maxRelativeError(dv, numericGradient(v) { reference(q, k, $0) }) < 1e-3)
        // Something was dropped, so this is not the plain attention.
        var plain = [Float](repeating: 0, count: q.count)
        Kernels.attentionForward(out: &plain, lse: &lse, q: qf, k: kf, v: vf, b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd)
        #expect(plain != out)
    }
}
