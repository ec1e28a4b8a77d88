import Foundation
import Testing
@testable import KondateKernels

/// Finite-difference checks: each backward is compared with central differences of a double-precision
/// reference forward, for the scalar L = Σ g·out with a random upstream gradient g.
struct Rand {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
    mutating func array(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in next() * scale } }
}

/// Central-difference gradient of `f` at `x`.
func numericGradient(_ x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    return (0..<x.count).map { i in
        let saved = x[i]
        x[i] = saved + h
        let up = f(x)
        x[i] = saved - h
        let down = f(x)
        x[i] = saved
        return (up - down) / (2 * h)
    }
}

func maxRelativeError(_ a: [Float], _ b: [Double]) -> Double {
    zip(a, b).map { abs(Double($0) - $1) / max(1e-3, abs($1)) }.max() ?? 0
}

@Suite("Kernel gradients against finite differences")
struct GradientCheckTests {
    @Test(arguments: [true, false])
    func matmul(bias useBias: Bool) {
        let (rows, c, oc) = (5, 7, 3)
        var rng = Rand(state: 1)
        let x = rng.array(rows * c), w = rng.array(oc * c), b = rng.array(oc), g = rng.array(rows * oc)
        func reference(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var total = 0.0
            for r in 0..<rows { for o in 0..<oc {
                var y = useBias ? b[o] : 0
                for i in 0..<c { y += x[r * c + i] * w[o * c + i] }
                total += g[r * oc + o] * y
            } }
            return total
        }
        var out = [Float](repeating: 0, count: rows * oc)
        var dx = [Float](repeating: 0, count: rows * c), dw = [Float](repeating: 0, count: oc * c), db = [Float](repeating: 0, count: oc)
        let xf = x.map(Float.init), wf = w.map(Float.init), bf = b.map(Float.init), gf = g.map(Float.init)
        bf.withUnsafeBufferPointer { bp in
            Kernels.matmulForward(out: &out, inp: xf, weight: wf, bias: useBias ? bp.baseAddress : nil, rows: rows, c: c, oc: oc)
        }
        db.withUnsafeMutableBufferPointer { dbp in
            Kernels.matmulBackward(dinp: &dx, dweight: &dw, dbias: useBias ? dbp.baseAddress : nil, dout: gf, inp: xf, weight: wf, rows: rows, c: c, oc: oc)
        }
        // Forward against the reference.
        let expected = reference(x, w, b)
        let actual = zip(out, g).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(abs(actual - expected) < 1e-4)
        #expect(maxRelativeError(dx, numericGradient(x) { reference($0, w, b) }) < 1e-3)
        #expect(maxRelativeError(dw, numericGradient(w) { reference(x, $0, b) }) < 1e-3)
        if useBias { #expect(maxRelativeError(db, numericGradient(b) { reference(x, w, $0) }) < 1e-3) }
    }

    @Test func rmsNorm() {
        let (rows, c, eps) = (4, 9, 1e-5)
        var rng = Rand(state: 2)
        let x = rng.array(rows * c), w = rng.array(c).map { 1 + $0 * 0.5 }, g = rng.array(rows * c)
        func reference(_ x: [Double], _ w: [Double]) -> Double {
            var total = 0.0
            for r in 0..<rows {
                let row = x[(r * c)..<(r * c + c)]
                let s = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(c) + eps).squareRoot()
                for i in 0..<c { total += g[r * c + i] * x[r * c + i] * s * w[i] }
            }
            return total
        }
        var out = [Float](repeating: 0, count: rows * c), rstd = [Float](repeating: 0, count: rows)
        var dx = [Float](repeating: 0, count: rows * c), dw = [Float](repeating: 0, count: c)
        let xf = x.map(Float.init), wf = w.map(Float.init), gf = g.map(Float.init)
        Kernels.rmsNormForward(out: &out, rstd: &rstd, inp: xf, weight: wf, rows: rows, c: c, eps: Float(eps))
        Kernels.rmsNormBackward(dinp: &dx, dweight: &dw, dout: gf, inp: xf, weight: wf, rstd: rstd, rows: rows, c: c)
        let actual = zip(out, g).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(abs(actual - reference(x, w)) < 1e-4)
        #expect(maxRelativeError(dx, numericGradient(x) { reference($0, w) }) < 1e-3)
        #expect(maxRelativeError(dw, numericGradient(w) { reference(x, $0) }) < 1e-3)
    }

    @Test func crossEntropyWithIgnoredTargets() {
        let (rows, v) = (6, 11)
        var rng = Rand(state: 3)
        let z = rng.array(rows * v, scale: 3)
        let targets: [Int32] = [3, -100, 0, 10, 5, -100]
        func reference(_ z: [Double]) -> Double {
            var total = 0.0, count = 0
            for r in 0..<rows where targets[r] != -100 {
                let row = Array(z[(r * v)..<(r * v + v)])
                let m = row.max()!
                let logSum = log(row.map { exp($0 - m) }.reduce(0, +)) + m
                total += logSum - row[Int(targets[r])]
                count += 1
            }
            return total / Double(count)
        }
        var probs = [Float](repeating: 0, count: rows * v), dz = [Float](repeating: 0, count: rows * v)
        let zf = z.map(Float.init)
        let (loss, count) = Kernels.crossEntropyForward(probs: &probs, logits: zf, targets: targets, rows: rows, v: v)
        #expect(count == 4)
        #expect(abs(Double(loss) - reference(z)) < 1e-5)
        Kernels.crossEntropyBackward(dlogits: &dz, probs: probs, targets: targets, rows: rows, v: v, scale: 1 / Float(count))
        #expect(maxRelativeError(dz, numericGradient(z) { reference($0) }) < 1e-3)
        // Ignored rows get no gradient.
        #expect(dz[(v)..<(2 * v)].allSatisfy { $0 == 0 })
    }
}
