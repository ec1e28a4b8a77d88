import Foundation
import Testing
@testable import KondateKernels

@Suite("Causal attention against a double-precision reference")
struct AttentionTests {
    @Test(arguments: [(4, 4), (4, 2), (4, 1)])
    func attention(heads: Int, kvHeads: Int) {
        let (b, t, hd) = (2, 5, 3)
        var rng = Rand(state: UInt64(10 + kvHeads))
        let q = rng.array(b * t * heads * hd), k = rng.array(b * t * kvHeads * hd), v = rng.array(b * t * kvHeads * hd)
        let g = rng.array(b * t * heads * hd)
        let group = heads / kvHeads
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
                for d in 0..<hd {
                    var o = 0.0
                    for j in 0...i { o += e[j] / z * v[((bi * t + j) * kvHeads + kh) * hd + d] }
                    total += o * g[((bi * t + i) * heads + h) * hd + d]
                }
            } } }
            return total
        }
        let qf = q.map(Float.init), kf = k.map(Float.init), vf = v.map(Float.init), gf = g.map(Float.init)
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: b * heads * t)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        Kernels.attentionForward(out: &out, lse: &lse, q: qf, k: kf, v: vf, b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd)
        Kernels.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: gf, out: out, lse: lse, q: qf, k: kf, v: vf,
                                  b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd)
        let forward = zip(out, g).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(abs(forward - reference(q, k, v)) < 1e-4)
        #expect(maxRelativeError(dq, numericGradient(q) { reference($0, k, v) }) < 1e-3)
        #expect(maxRelativeError(dk, numericGradient(k) { reference(q, $0, v) }) < 1e-3)
        #expect(maxRelativeError(dv, numericGradient(v) { reference(q, k, $0) }) < 1e-3)
    }
}
