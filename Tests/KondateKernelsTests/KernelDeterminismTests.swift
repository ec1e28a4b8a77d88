import Foundation
import Testing
@testable import KondateKernels

/// Every parallelised kernel gives bitwise identical results for 1, 2 and 3 threads. Shapes are chosen
/// to span several chunks (and ragged last chunks), so that the work really is split.
@Suite("Kernels are deterministic across thread counts", .serialized)
struct KernelDeterminismTests {
    /// Runs `body` once per thread count and expects every run to return exactly the first one's arrays.
    func expectSameForAllThreadCounts(_ name: String, _ body: () -> [[Float]]) {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var first: [[Float]]?
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let result = body()
            if let first {
                #expect(first == result, "\(name) differs with \(threads) threads")
            } else {
                first = result
            }
        }
    }

    func floats(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var rng = Rand(state: seed)
        return rng.array(n, scale: scale).map(Float.init)
    }

    @Test func parallelForVisitsEveryChunkOnce() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [1, 2, 3, 8] {
            Parallel.threads = threads
            var hits = [Int](repeating: 0, count: 1000)
            hits.withUnsafeMutableBufferPointer { hits in
                Parallel.forEach(count: 1000, chunkSize: 7) { range in
                    for i in range { hits[i] += 1 }
                }
            }
            #expect(hits.allSatisfy { $0 == 1 })
        }
        Parallel.threads = 0
        #expect(Parallel.threads == 1)
    }

    @Test func matmulBias() {
        let (rows, c, oc) = (300, 40, 600)
        let x = floats(rows * c, seed: 1), w = floats(oc * c, seed: 2), bias = floats(oc, seed: 3), g = floats(rows * oc, seed: 4)
        expectSameForAllThreadCounts("matmul") {
            var out = [Float](repeating: 0, count: rows * oc), dx = floats(rows * c, seed: 5)
            var dw = floats(oc * c, seed: 6), db = floats(oc, seed: 7)
            Kernels.matmulForward(out: &out, inp: x, weight: w, bias: bias, rows: rows, c: c, oc: oc)
            db.withUnsafeMutableBufferPointer { dbp in
                Kernels.matmulBackward(dinp: &dx, dweight: &dw, dbias: dbp.baseAddress, dout: g, inp: x, weight: w, rows: rows, c: c, oc: oc)
            }
            return [out, dx, dw, db]
        }
    }

    @Test func rmsNorm() {
        let (rows, c) = (300, 203)
        let x = floats(rows * c, seed: 8), w = floats(c, seed: 9), g = floats(rows * c, seed: 10)
        expectSameForAllThreadCounts("rmsNorm") {
            var out = [Float](repeating: 0, count: rows * c), rstd = [Float](repeating: 0, count: rows)
            var dx = floats(rows * c, seed: 11), dw = floats(c, seed: 12)
            Kernels.rmsNormForward(out: &out, rstd: &rstd, inp: x, weight: w, rows: rows, c: c, eps: 1e-5)
            Kernels.rmsNormBackward(dinp: &dx, dweight: &dw, dout: g, inp: x, weight: w, rstd: rstd, rows: rows, c: c)
            return [out, rstd, dx, dw]
        }
    }

    @Test func layerNorm() {
        let (rows, c) = (300, 203)
        let x = floats(rows * c, seed: 13, scale: 3), w = floats(c, seed: 14), bias = floats(c, seed: 15), g = floats(rows * c, seed: 16)
        expectSameForAllThreadCounts("layerNorm") {
            var out = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: rows), rstd = mean
            var dx = floats(rows * c, seed: 17), dw = floats(c, seed: 18), db = floats(c, seed: 19)
            Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: bias, rows: rows, c: c, eps: 1e-5)
            Kernels.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w, mean: mean, rstd: rstd,
                                      rows: rows, c: c)
            return [out, mean, rstd, dx, dw, db]
        }
    }

    @Test func embedding() {
        let (b, t, c, v) = (3, 50, 600, 20)
        var rng = Rand(state: 20)
        let tokens = (0..<(b * t)).map { _ in Int32((rng.next() + 1) / 2 * Double(v - 1)) }
        let wte = floats(v * c, seed: 21), wpe = floats(t * c, seed: 22), g = floats(b * t * c, seed: 23)
        expectSameForAllThreadCounts("embedding") {
            var out = [Float](repeating: 0, count: b * t * c), dwte = floats(v * c, seed: 24), dwpe = floats(t * c, seed: 25)
            Kernels.embeddingForward(out: &out, tokens: tokens, wte: wte, wpe: wpe, b: b, t: t, c: c)
            Kernels.embeddingBackward(dwte: &dwte, dwpe: &dwpe, dout: g, tokens: tokens, b: b, t: t, c: c)
            return [out, dwte, dwpe]
        }
    }

    @Test(arguments: [true, false])
    func gelu(tanh: Bool) {
        let n = 3 * 16_384 + 13
        let x = floats(n, seed: 26, scale: 5), g = floats(n, seed: 27)
        expectSameForAllThreadCounts("gelu") {
            var out = [Float](repeating: 0, count: n), dx = floats(n, seed: 28)
            Kernels.geluForward(out: &out, inp: x, n: n, tanhApproximation: tanh)
            Kernels.geluBackward(dinp: &dx, inp: x, dout: g, n: n, tanhApproximation: tanh)
            return [out, dx]
        }
    }

    @Test func swigluAndResidual() {
        let n = 3 * 16_384 + 13
        let a = floats(n, seed: 29, scale: 6), u = floats(n, seed: 30), g = floats(n, seed: 31)
        expectSameForAllThreadCounts("swiglu and residual") {
            var out = [Float](repeating: 0, count: n), da = floats(n, seed: 32), du = floats(n, seed: 33)
            var sum = [Float](repeating: 0, count: n)
            Kernels.swigluForward(out: &out, gate: a, up: u, n: n)
            Kernels.swigluBackward(dgate: &da, dup: &du, dout: g, gate: a, up: u, n: n)
            Kernels.residualForward(out: &sum, a: a, b: u, n: n)
            Kernels.residualBackward(da: &da, db: &du, dout: g, n: n)
            return [out, da, du, sum]
        }
    }

    @Test func rope() {
        let (b, t, heads, d) = (2, 90, 6, 64)
        let x = floats(b * t * heads * d, seed: 34)
        let (cosT, sinT) = Kernels.ropeTables(t: t, headDim: d, theta: 10_000)
        expectSameForAllThreadCounts("rope") {
            var y = x
            Kernels.ropeForward(&y, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
            var dy = y
            Kernels.ropeBackward(&dy, cos: cosT, sin: sinT, b: b, t: t, heads: heads, headDim: d)
            return [y, dy]
        }
    }

    @Test func crossEntropy() {
        let (rows, v) = (100, 1000)
        let z = floats(rows * v, seed: 35, scale: 4)
        let targets = (0..<rows).map { $0 % 7 == 3 ? Int32(-100) : Int32(($0 * 37) % v) }
        expectSameForAllThreadCounts("crossEntropy") {
            var probs = [Float](repeating: 0, count: rows * v), dz = floats(rows * v, seed: 36)
            let (loss, count) = Kernels.crossEntropyForward(probs: &probs, logits: z, targets: targets, rows: rows, v: v)
            Kernels.crossEntropyBackward(dlogits: &dz, probs: probs, targets: targets, rows: rows, v: v, scale: 1 / Float(count))
            return [[loss, Float(count)], probs, dz]
        }
    }

    @Test func attention() {
        let (b, t, heads, kvHeads, hd) = (2, 130, 4, 2, 16)
        let q = floats(b * t * heads * hd, seed: 37), k = floats(b * t * kvHeads * hd, seed: 38)
        let v = floats(k.count, seed: 39), g = floats(q.count, seed: 40)
        expectSameForAllThreadCounts("attention") {
            var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: b * heads * t)
            var dq = floats(q.count, seed: 41), dk = floats(k.count, seed: 42), dv = floats(k.count, seed: 43)
            Kernels.attentionForward(out: &out, lse: &lse, q: q, k: k, v: v, b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd)
            Kernels.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: g, out: out, lse: lse, q: q, k: k, v: v,
                                      b: b, t: t, heads: heads, kvHeads: kvHeads, headDim: hd)
            return [out, lse, dq, dk, dv]
        }
    }
}
