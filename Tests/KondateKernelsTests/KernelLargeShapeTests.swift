import Foundation
import Testing
@testable import KondateKernels

/// The parallel kernels at shapes that span several chunks (ragged last chunks, several partials per
/// reduction, vector tails), against straightforward double-precision references.
@Suite("Kernels at multi-chunk shapes against double-precision references")
struct KernelLargeShapeTests {
    func floats(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var rng = Rand(state: seed)
        return rng.array(n, scale: scale).map(Float.init)
    }

    /// max |a − b| / max(|b|, 1e-6), over whole tensors.
    func error(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        let scale = max(1e-6, b.map(abs).max() ?? 0)
        return zip(a, b).map { abs(Double($0) - $1) }.max().map { $0 / scale } ?? 0
    }

    @Test func rmsNorm() {
        let (rows, c, eps) = (300, 203, 1e-5)
        let x = floats(rows * c, seed: 1), w = floats(c, seed: 2).map { 1 + $0 / 2 }, g = floats(rows * c, seed: 3)
        var out = [Float](repeating: 0, count: rows * c), rstd = [Float](repeating: 0, count: rows)
        var dx = [Float](repeating: 0, count: rows * c), dw = [Float](repeating: 0, count: c)
        Kernels.rmsNormForward(out: &out, rstd: &rstd, inp: x, weight: w, rows: rows, c: c, eps: Float(eps))
        Kernels.rmsNormBackward(dinp: &dx, dweight: &dw, dout: g, inp: x, weight: w, rstd: rstd, rows: rows, c: c)
        var eOut = [Double](repeating: 0, count: rows * c), eDx = eOut, eDw = [Double](repeating: 0, count: c)
        for r in 0..<rows {
            let row = (0..<c).map { Double(x[r * c + $0]) }
            let s = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(c) + eps).squareRoot()
            var dot = 0.0
            for i in 0..<c { dot += Double(g[r * c + i]) * Double(w[i]) * row[i] }
            for i in 0..<c {
                eOut[r * c + i] = row[i] * s * Double(w[i])
                eDx[r * c + i] = s * Double(w[i]) * Double(g[r * c + i]) - s * s * s / Double(c) * dot * row[i]
                eDw[i] += Double(g[r * c + i]) * row[i] * s
            }
        }
        #expect(error(out, eOut) < 1e-5)
        #expect(error(dx, eDx) < 1e-4)
        #expect(error(dw, eDw) < 1e-4)
    }

    @Test func layerNorm() {
        let (rows, c, eps) = (300, 203, 1e-5)
        let x = floats(rows * c, seed: 4, scale: 3), w = floats(c, seed: 5), b = floats(c, seed: 6), g = floats(rows * c, seed: 7)
        var out = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: rows), rstd = mean
        var dx = [Float](repeating: 0, count: rows * c), dw = [Float](repeating: 0, count: c), db = dw
        Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, c: c, eps: Float(eps))
        Kernels.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w, mean: mean, rstd: rstd, rows: rows, c: c)
        var eOut = [Double](repeating: 0, count: rows * c), eDx = eOut, eDw = [Double](repeating: 0, count: c), eDb = eDw
        for r in 0..<rows {
            let row = (0..<c).map { Double(x[r * c + $0]) }
            let m = row.reduce(0, +) / Double(c)
            let s = 1 / (row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c) + eps).squareRoot()
            let norm = row.map { ($0 - m) * s }
            let dn = (0..<c).map { Double(g[r * c + $0]) * Double(w[$0]) }
            let meanD = dn.reduce(0, +) / Double(c)
            let meanDN = zip(dn, norm).map { $0 * $1 }.reduce(0, +) / Double(c)
            for i in 0..<c {
                eOut[r * c + i] = norm[i] * Double(w[i]) + Double(b[i])
                eDx[r * c + i] = s * (dn[i] - meanD - norm[i] * meanDN)
                eDw[i] += norm[i] * Double(g[r * c + i])
                eDb[i] += Double(g[r * c + i])
            }
        }
        #expect(error(out, eOut) < 1e-5)
        #expect(error(dx, eDx) < 1e-4)
        #expect(error(dw, eDw) < 1e-4)
        #expect(error(db, eDb) < 1e-4)
    }

    @Test func embeddingAndMatmulBias() {
        let (b, t, c, v) = (3, 50, 600, 20)
        let tokens = (0..<(b * t)).map { Int32(($0 * 7) % v) }
        let wte = floats(v * c, seed: 8), wpe = floats(t * c, seed: 9), g = floats(b * t * c, seed: 10)
        var out = [Float](repeating: 0, count: b * t * c), dwte = [Float](repeating: 0, count: v * c), dwpe = [Float](repeating: 0, count: t * c)
        Kernels.embeddingForward(out: &out, tokens: tokens, wte: wte, wpe: wpe, b: b, t: t, c: c)
        Kernels.embeddingBackward(dwte: &dwte, dwpe: &dwpe, dout: g, tokens: tokens, b: b, t: t, c: c)
        var eOut = [Double](repeating: 0, count: b * t * c), eDwte = [Double](repeating: 0, count: v * c), eDwpe = [Double](repeating: 0, count: t * c)
        for i in 0..<(b * t) {
            let tok = Int(tokens[i])
            for k in 0..<c {
                eOut[i * c + k] = Double(wte[tok * c + k]) + Double(wpe[(i % t) * c + k])
                eDwte[tok * c + k] += Double(g[i * c + k])
                eDwpe[(i % t) * c + k] += Double(g[i * c + k])
            }
        }
        #expect(error(out, eOut) < 1e-6)
        #expect(error(dwte, eDwte) < 1e-5)
        #expect(error(dwpe, eDwpe) < 1e-5)

        // Bias broadcast and the bias gradient of a linear layer (rows = b·t, oc = c).
        let rows = b * t, inC = 8
        let x = floats(rows * inC, seed: 11), weight = floats(c * inC, seed: 12), bias = floats(c, seed: 13)
        var y = [Float](repeating: 0, count: rows * c), dW = [Float](repeating: 0, count: c * inC), dBias = [Float](repeating: 0, count: c)
        Kernels.matmulForward(out: &y, inp: x, weight: weight, bias: bias, rows: rows, c: inC, oc: c)
        Kernels.matmulBackward(dinp: nil, dweight: &dW, dbias: &dBias, dout: g, inp: x, weight: weight, rows: rows, c: inC, oc: c)
        var eY = [Double](repeating: 0, count: rows * c), eDBias = [Double](repeating: 0, count: c)
        for r in 0..<rows {
            for o in 0..<c {
                var acc = Double(bias[o])
                for i in 0..<inC { acc += Double(x[r * inC + i]) * Double(weight[o * inC + i]) }
                eY[r * c + o] = acc
                eDBias[o] += Double(g[r * c + o])
            }
        }
        #expect(error(y, eY) < 1e-5)
        #expect(error(dBias, eDBias) < 1e-5)
    }

    @Test func activationsAndResidual() {
        let n = 3 * 16_384 + 13
        let x = floats(n, seed: 14, scale: 6), u = floats(n, seed: 15), g = floats(n, seed: 16)
        func gelu(_ v: Double, tanh: Bool) -> Double {
            tanh ? 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) : 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        }
        for useTanh in [true, false] {
            var out = [Float](repeating: 0, count: n), dx = [Float](repeating: 0, count: n)
            Kernels.geluForward(out: &out, inp: x, n: n, tanhApproximation: useTanh)
            Kernels.geluBackward(dinp: &dx, inp: x, dout: g, n: n, tanhApproximation: useTanh)
            let h = 1e-5
            let eDx = (0..<n).map { i in
                Double(g[i]) * (gelu(Double(x[i]) + h, tanh: useTanh) - gelu(Double(x[i]) - h, tanh: useTanh)) / (2 * h)
            }
            #expect(error(out, x.map { gelu(Double($0), tanh: useTanh) }) < 1e-6)
            #expect(error(dx, eDx) < 1e-5)
        }
        var out = [Float](repeating: 0, count: n), da = out, du = out
        Kernels.swigluForward(out: &out, gate: x, up: u, n: n)
        Kernels.swigluBackward(dgate: &da, dup: &du, dout: g, gate: x, up: u, n: n)
        var eOut = [Double](repeating: 0, count: n), eDa = eOut, eDu = eOut
        for i in 0..<n {
            let a = Double(x[i]), up = Double(u[i]), dy = Double(g[i])
            let sig = 1 / (1 + exp(-a))
            eOut[i] = a * sig * up
            eDu[i] = dy * a * sig
            eDa[i] = dy * up * sig * (1 + a * (1 - sig))
        }
        #expect(error(out, eOut) < 1e-6)
        #expect(error(du, eDu) < 1e-6)
        #expect(error(da, eDa) < 1e-6)
        var sum = [Float](repeating: 0, count: n), ga = g, gb = u
        Kernels.residualForward(out: &sum, a: x, b: u, n: n)
        Kernels.residualBackward(da: &ga, db: &gb, dout: x, n: n)
        #expect(sum == zip(x, u).map { $0 + $1 })
        #expect(ga == zip(g, x).map { $0 + $1 })
        #expect(gb == zip(u, x).map { $0 + $1 })
    }

    @Test func rope() {
        let (b, t, heads, d) = (2, 90, 6, 20)
        let x = floats(b * t * heads * d, seed: 17)
        let (cosT, sinT) = Kernels.ropeTables(t: t, headDim: d, theta: 10_000)
        var y = x
        Kernels.ropeForward(&y, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
        var expected = [Double](repeating: 0, count: x.count)
        for bt in 0..<(b * t) {
            for h in 0..<heads {
                let base = (bt * heads + h) * d
                for j in 0..<d {
                    let i = j % (d / 2)
                    let angle = Double(bt % t) * pow(10_000, -Double(2 * i) / Double(d))
                    let rotated = j < d / 2 ? -Double(x[base + j + d / 2]) : Double(x[base + j - d / 2])
                    expected[base + j] = Double(x[base + j]) * cos(angle) + rotated * sin(angle)
                }
            }
        }
        #expect(error(y, expected) < 1e-5)
        Kernels.ropeBackward(&y, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
        #expect(error(y, x.map(Double.init)) < 1e-5)
    }

    @Test func crossEntropy() {
        let (rows, v) = (100, 1001)
        let z = floats(rows * v, seed: 18, scale: 8)
        let targets = (0..<rows).map { $0 % 7 == 3 ? Int32(-100) : Int32(($0 * 37) % v) }
        var probs = [Float](repeating: 0, count: rows * v), dz = [Float](repeating: 0, count: rows * v)
        let (loss, count) = Kernels.crossEntropyForward(probs: &probs, logits: z, targets: targets, rows: rows, v: v)
        Kernels.crossEntropyBackward(dlogits: &dz, probs: probs, targets: targets, rows: rows, v: v, scale: 1 / Float(count))
        var eProbs = [Double](repeating: 0, count: rows * v), eDz = eProbs
        var total = 0.0, eCount = 0
        for r in 0..<rows {
            let row = (0..<v).map { Double(z[r * v + $0]) }
            let m = row.max()!, e = row.map { exp($0 - m) }, s = e.reduce(0, +)
            for i in 0..<v { eProbs[r * v + i] = e[i] / s }
            guard targets[r] != -100 else { continue }
            total += log(s) + m - row[Int(targets[r])]
            eCount += 1
        }
        for r in 0..<rows where targets[r] != -100 {
            for i in 0..<v { eDz[r * v + i] = (eProbs[r * v + i] - (i == Int(targets[r]) ? 1 : 0)) / Double(eCount) }
        }
        #expect(count == eCount)
        #expect(abs(Double(loss) - total / Double(eCount)) < 1e-5)
        #expect(error(probs, eProbs) < 1e-5)
        #expect(error(dz, eDz) < 1e-5)
    }
}
