import Foundation
import Testing
@testable import KondateKernels

@Suite("Layer kernels against double-precision references")
struct LayerGradientTests {
    func dot(_ a: [Float], _ g: [Double]) -> Double { zip(a, g).reduce(0.0) { $0 + Double($1.0) * $1.1 } }

    @Test func layerNorm() {
        let (rows, c, eps) = (3, 8, 1e-5)
        var rng = Rand(state: 4)
        let x = rng.array(rows * c, scale: 2), w = rng.array(c).map { 1 + $0 / 2 }, b = rng.array(c), g = rng.array(rows * c)
        func reference(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var total = 0.0
            for r in 0..<rows {
                let row = Array(x[(r * c)..<(r * c + c)])
                let m = row.reduce(0, +) / Double(c)
                let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c)
                let s = 1 / (v + eps).squareRoot()
                for i in 0..<c { total += g[r * c + i] * ((row[i] - m) * s * w[i] + b[i]) }
            }
            return total
        }
        let xf = x.map(Float.init), wf = w.map(Float.init), bf = b.map(Float.init), gf = g.map(Float.init)
        var out = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: rows), rstd = mean
        var dx = [Float](repeating: 0, count: rows * c), dw = [Float](repeating: 0, count: c), db = dw
        Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: xf, weight: wf, bias: bf, rows: rows, c: c, eps: Float(eps))
        Kernels.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: gf, inp: xf, weight: wf, mean: mean, rstd: rstd, rows: rows, c: c)
        #expect(abs(dot(out, g) - reference(x, w, b)) < 1e-4)
        #expect(maxRelativeError(dx, numericGradient(x) { reference($0, w, b) }) < 1e-3)
        #expect(maxRelativeError(dw, numericGradient(w) { reference(x, $0, b) }) < 1e-3)
        #expect(maxRelativeError(db, numericGradient(b) { reference(x, w, $0) }) < 1e-3)
    }

    @Test(arguments: [true, false])
    func gelu(tanh: Bool) {
        var rng = Rand(state: 5)
        let x = rng.array(50, scale: 4), g = rng.array(50)
        func f(_ v: Double) -> Double {
            tanh ? 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) : 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        }
        func reference(_ x: [Double]) -> Double { zip(x, g).reduce(0.0) { $0 + f($1.0) * $1.1 } }
        let xf = x.map(Float.init)
        var out = [Float](repeating: 0, count: 50), dx = out
        Kernels.geluForward(out: &out, inp: xf, n: 50, tanhApproximation: tanh)
        Kernels.geluBackward(dinp: &dx, inp: xf, dout: g.map(Float.init), n: 50, tanhApproximation: tanh)
        #expect(abs(dot(out, g) - reference(x)) < 1e-4)
        #expect(maxRelativeError(dx, numericGradient(x, reference)) < 1e-3)
    }

    @Test func swiglu() {
        var rng = Rand(state: 6)
        let a = rng.array(40, scale: 3), u = rng.array(40), g = rng.array(40)
        func reference(_ a: [Double], _ u: [Double]) -> Double {
            (0..<40).reduce(0.0) { $0 + a[$1] / (1 + exp(-a[$1])) * u[$1] * g[$1] }
        }
        var out = [Float](repeating: 0, count: 40), da = out, du = out
        Kernels.swigluForward(out: &out, gate: a.map(Float.init), up: u.map(Float.init), n: 40)
        Kernels.swigluBackward(dgate: &da, dup: &du, dout: g.map(Float.init), gate: a.map(Float.init), up: u.map(Float.init), n: 40)
        #expect(abs(dot(out, g) - reference(a, u)) < 1e-4)
        #expect(maxRelativeError(da, numericGradient(a) { reference($0, u) }) < 1e-3)
        #expect(maxRelativeError(du, numericGradient(u) { reference(a, $0) }) < 1e-3)
    }

    @Test func embeddingWithPositions() {
        let (b, t, c, v) = (2, 3, 4, 5)
        let tokens: [Int32] = [1, 4, 1, 0, 2, 4]
        var rng = Rand(state: 7)
        let wte = rng.array(v * c).map(Float.init), wpe = rng.array(t * c).map(Float.init), g = rng.array(b * t * c).map(Float.init)
        var out = [Float](repeating: 0, count: b * t * c), dwte = [Float](repeating: 0, count: v * c), dwpe = [Float](repeating: 0, count: t * c)
        Kernels.embeddingForward(out: &out, tokens: tokens, wte: wte, wpe: wpe, b: b, t: t, c: c)
        #expect(out[(4 * c)..<(5 * c)].elementsEqual((0..<c).map { wte[2 * c + $0] + wpe[1 * c + $0] }))
        Kernels.embeddingBackward(dwte: &dwte, dwpe: &dwpe, dout: g, tokens: tokens, b: b, t: t, c: c)
        // Token 1 appears at rows 0 and 2, token 4 at rows 1 and 5.
        for k in 0..<c {
            #expect(dwte[1 * c + k] == g[0 * c + k] + g[2 * c + k])
            #expect(dwte[4 * c + k] == g[1 * c + k] + g[5 * c + k])
            #expect(dwte[3 * c + k] == 0)
            #expect(dwpe[0 * c + k] == g[0 * c + k] + g[3 * c + k])
        }
    }

    @Test func ropeIsARotationAndMatchesHF() {
        let (b, t, heads, d) = (1, 5, 2, 8)
        var rng = Rand(state: 8)
        let x = rng.array(b * t * heads * d).map(Float.init)
        let (cosT, sinT) = Kernels.ropeTables(t: t, headDim: d, theta: 10_000)
        var y = x
        Kernels.ropeForward(&y, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
        // HF: q*cos + rotate_half(q)*sin with cos, sin = cat(freqs, freqs).
        for p in 0..<t {
            for h in 0..<heads {
                let base = (p * heads + h) * d
                for j in 0..<d {
                    let i = j % (d / 2)
                    let angle = Double(p) * pow(10_000, -Double(2 * i) / Double(d))
                    let rotated = j < d / 2 ? -Double(x[base + j + d / 2]) : Double(x[base + j - d / 2])
                    let expected = Double(x[base + j]) * cos(angle) + rotated * sin(angle)
                    #expect(abs(Double(y[base + j]) - expected) < 1e-5)
                }
            }
        }
        // Backward is the inverse rotation (the transpose of an orthogonal map).
        Kernels.ropeBackward(&y, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
        #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
