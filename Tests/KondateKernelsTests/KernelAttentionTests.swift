import Foundation
import Testing
@testable import KondateKernels

/// The blocked attention kernels against a double-precision reference at sequence lengths that are
/// not multiples of the query block (including a single position), with and without grouped-query heads.
@Suite("Blocked attention against a double-precision reference")
struct KernelAttentionTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let b: Int, t: Int, heads: Int, kvHeads: Int, hd: Int
        var testDescription: String { "B\(b) T\(t) NH\(heads) NKV\(kvHeads) hd\(hd)" }
    }

    static let shapes = [
        Shape(b: 2, t: 1, heads: 4, kvHeads: 2, hd: 8),
        Shape(b: 2, t: 7, heads: 4, kvHeads: 1, hd: 5),
        Shape(b: 1, t: 70, heads: 4, kvHeads: 2, hd: 16),
        Shape(b: 2, t: 130, heads: 2, kvHeads: 2, hd: 12),
        Shape(b: 1, t: 130, heads: 6, kvHeads: 2, hd: 9),
    ]

    /// Forward and analytic backward in Double: out, lse, and dq, dk, dv for upstream gradient g.
    static func reference(_ s: Shape, q: [Double], k: [Double], v: [Double], g: [Double])
        -> (out: [Double], lse: [Double], dq: [Double], dk: [Double], dv: [Double]) {
        let (b, t, heads, kvHeads, hd) = (s.b, s.t, s.heads, s.kvHeads, s.hd)
        let group = heads / kvHeads, scale = 1 / Double(hd).squareRoot()
        var out = [Double](repeating: 0, count: q.count), lse = [Double](repeating: 0, count: b * heads * t)
        var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count), dv = dk
        func qi(_ bi: Int, _ i: Int, _ h: Int) -> Int { ((bi * t + i) * heads + h) * hd }
        func kj(_ bi: Int, _ j: Int, _ kh: Int) -> Int { ((bi * t + j) * kvHeads + kh) * hd }
        for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
            let kh = h / group
            var scores = [Double]()
            for j in 0...i {
                var dotp = 0.0
                for d in 0..<hd { dotp += q[qi(bi, i, h) + d] * k[kj(bi, j, kh) + d] }
                scores.append(dotp * scale)
            }
            let m = scores.max()!
            let e = scores.map { exp($0 - m) }, z = e.reduce(0, +)
            let p = e.map { $0 / z }
            lse[(bi * heads + h) * t + i] = m + log(z)
            for d in 0..<hd {
                var o = 0.0
                for j in 0...i { o += p[j] * v[kj(bi, j, kh) + d] }
                out[qi(bi, i, h) + d] = o
            }
            var delta = 0.0
            for d in 0..<hd { delta += g[qi(bi, i, h) + d] * out[qi(bi, i, h) + d] }
            for j in 0...i {
                var dp = 0.0
                for d in 0..<hd {
                    dv[kj(bi, j, kh) + d] += p[j] * g[qi(bi, i, h) + d]
                    dp += g[qi(bi, i, h) + d] * v[kj(bi, j, kh) + d]
                }
                let ds = p[j] * (dp - delta) * scale
                for d in 0..<hd {
                    dq[qi(bi, i, h) + d] += ds * k[kj(bi, j, kh) + d]
                    dk[kj(bi, j, kh) + d] += ds * q[qi(bi, i, h) + d]
                }
            }
        } } }
        return (out, lse, dq, dk, dv)
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        let scale = max(1e-6, b.map(abs).max() ?? 0)
        return zip(a, b).map { abs(Double($0) - $1) }.max().map { $0 / scale } ?? 0
    }

    @Test(arguments: shapes)
    func matchesReference(shape s: Shape) {
        var rng = Rand(state: UInt64(100 + s.t))
        let q = rng.array(s.b * s.t * s.heads * s.hd), k = rng.array(s.b * s.t * s.kvHeads * s.hd)
        let v = rng.array(k.count), g = rng.array(q.count)
        let expected = Self.reference(s, q: q, k: k, v: v, g: g)
        let qf = q.map(Float.init), kf = k.map(Float.init), vf = v.map(Float.init), gf = g.map(Float.init)
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: s.b * s.heads * s.t)
        // Non-zero starting gradients: the backward must accumulate into them.
        let dq0 = rng.array(q.count), dk0 = rng.array(k.count), dv0 = rng.array(k.count)
        var dq = dq0.map(Float.init), dk = dk0.map(Float.init), dv = dv0.map(Float.init)
        Kernels.attentionForward(out: &out, lse: &lse, q: qf, k: kf, v: vf, b: s.b, t: s.t, heads: s.heads, kvHeads: s.kvHeads, headDim: s.hd)
        Kernels.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: gf, out: out, lse: lse, q: qf, k: kf, v: vf,
                                  b: s.b, t: s.t, heads: s.heads, kvHeads: s.kvHeads, headDim: s.hd)
        #expect(Self.relativeError(out, expected.out) < 1e-5)
        #expect(Self.relativeError(lse, expected.lse) < 1e-5)
        #expect(Self.relativeError(dq, zip(dq0, expected.dq).map { $0 + $1 }) < 1e-4)
        #expect(Self.relativeError(dk, zip(dk0, expected.dk).map { $0 + $1 }) < 1e-4)
        #expect(Self.relativeError(dv, zip(dv0, expected.dv).map { $0 + $1 }) < 1e-4)
        // The analytic reference backward agrees with finite differences of the reference forward.
        if s.t <= 7 {
            func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
                zip(Self.reference(s, q: q, k: k, v: v, g: g).out, g).reduce(0.0) { $0 + $1.0 * $1.1 }
            }
            let sub = { (a: [Float], b: [Float]) in zip(a, b).map { $0 - $1 } }
            #expect(maxRelativeError(sub(dq, dq0.map(Float.init)), numericGradient(q) { loss($0, k, v) }) < 1e-3)
            #expect(maxRelativeError(sub(dk, dk0.map(Float.init)), numericGradient(k) { loss(q, $0, v) }) < 1e-3)
            #expect(maxRelativeError(sub(dv, dv0.map(Float.init)), numericGradient(v) { loss(q, k, $0) }) < 1e-3)
        }
    }
}
