import Foundation
import Testing
@testable import KondateKernels

/// oneDNN's bf16 matmul can run where the CPU has AVX-512 (natively with `avx512_bf16`, emulated
/// without); below that Kondate uses the rounded-sgemm route, tested on its own.
let oneDNNRunsBF16 = OneDNN.isa.hasPrefix("avx512_core")

@Suite("bf16 rounding and matmuls", .serialized)
struct BF16Tests {
    @Test func roundsToNearestEven() {
        #expect(BF16.bits(1) == 0x3F80)
        #expect(BF16.bits(-2) == 0xC000)
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        #expect(BF16.bits(1 + 0x1p-8) == 0x3F80)
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2·2⁻⁷: to the even one.
        #expect(BF16.bits(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(BF16.bits(1 + 0x1p-8 + 0x1p-20) == 0x3F81)
        #expect(BF16.bits(.infinity) == 0x7F80 && BF16.bits(-.infinity) == 0xFF80)
        #expect(BF16.float(BF16.bits(.nan)).isNaN)
        // The largest f32 is above the largest bf16 by more than half a step: it rounds to infinity, as torch does.
        #expect(BF16.bits(.greatestFiniteMagnitude) == 0x7F80)
        #expect(BF16.float(BF16.bits(0x1p-130)) == 0x1p-130)  // subnormals keep their top 7 mantissa bits
        // Every bf16 value converts back to itself.
        for b in stride(from: UInt16(0), to: 0x7F80, by: 37) { #expect(BF16.bits(BF16.float(b)) == b) }
    }

    /// op(A)·op(B) (+ C) with A and B rounded to bf16, summed in double: what a bf16 matmul with f32
    /// accumulation approximates to within f32 summation error.
    func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int,
                   c: [Float], ldc: Int, accumulate: Bool) -> (value: [Double], magnitude: [Double]) {
        var out = [Double](repeating: 0, count: m * n), mag = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = accumulate ? Double(c[i * ldc + j]) : 0, t = abs(s)
                for p in 0..<k {
                    let x = Double(BF16.rounded(transA ? a[p * lda + i] : a[i * lda + p]))
                    let y = Double(BF16.rounded(transB ? b[j * ldb + p] : b[p * ldb + j]))
                    s += x * y
                    t += abs(x * y)
                }
                out[i * n + j] = s
                mag[i * n + j] = t
            }
        }
        return (out, mag)
    }

    func check(route: Kernels.BF16Route) {
        let saved = Kernels.bf16Route
        Kernels.bf16Route = route
        defer { Kernels.bf16Route = saved }
        var rng = Rand(state: 11)
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 48, 300)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for accumulate in [false, true] {
                        // Strides wider than the rows, as a slice of a larger buffer.
                        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
                        let a = rng.array((transA ? k : m) * lda).map(Float.init), b = rng.array((transB ? n : k) * ldb).map(Float.init)
                        var c = rng.array(m * ldc).map(Float.init)
                        let ref = reference(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                            accumulate: accumulate)
                        let before = c
                        a.withUnsafeBufferPointer { pa in
                            b.withUnsafeBufferPointer { pb in
                                c.withUnsafeMutableBufferPointer { pc in
                                    Kernels.gemm(.bf16, transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                                                 b: pb.baseAddress!, ldb: ldb, beta: accumulate ? 1 : 0, c: pc.baseAddress!, ldc: ldc)
                                }
                            }
                        }
                        // f32 accumulation of k + 1 terms: error below (k + 1) · 2⁻²⁴ · Σ|terms|.
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                let err = abs(Double(c[i * ldc + j]) - ref.value[i * n + j]) / max(ref.magnitude[i * n + j], 1e-30)
                                worst = max(worst, err)
                            }
                            // Padding between rows is untouched.
                            for j in n..<ldc { #expect(c[i * ldc + j] == before[i * ldc + j]) }
                        }
                        #expect(worst <= Double(k + 1) * 0x1p-24, "\(route) \(m)×\(n)×\(k) transA \(transA) transB \(transB) accumulate \(accumulate): \(worst)")
                    }
                }
            }
        }
    }

    @Test(.enabled(if: oneDNNRunsBF16)) func oneDNNRouteMatchesTheRoundedReference() { check(route: .oneDNN) }

    @Test func roundedSGEMMRouteMatchesTheRoundedReference() { check(route: .roundedSGEMM) }

    /// The same call gives the same bits every time, and (for the shapes of the runtime's layers) the
    /// same bits for 1 and 2 threads.
    @Test(.enabled(if: oneDNNRunsBF16)) func oneDNNIsDeterministic() {
        let saved = Kernels.bf16Route
        Kernels.bf16Route = .oneDNN
        defer {
            Kernels.bf16Route = saved
            Kernels.setMatmulThreads(ProcessInfo.processInfo.activeProcessorCount)
        }
        var rng = Rand(state: 5)
        let (m, n, k) = (256, 192, 128)
        let a = rng.array(m * k).map(Float.init), b = rng.array(n * k).map(Float.init)
        func run(threads: Int) -> [Float] {
            Kernels.setMatmulThreads(threads)
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        Kernels.gemm(.bf16, transA: false, transB: true, m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: k,
                                     beta: 0, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            return c
        }
        let first = run(threads: 2)
        #expect(run(threads: 2) == first)
        #expect(run(threads: 1) == first)
    }
}
