import Foundation

/// How the matrix products of a linear layer compute.
///
/// - `fp32`: f32 operands on OpenBLAS `sgemm`.
/// - `bf16`: operands rounded to bf16 (round to nearest even), products accumulated in f32, the
///   result in f32 — the matmul of Megatron-LM's bf16 mixed precision. Everything else (norms,
///   softmax, RoPE, attention scores, the loss, gradients' accumulation, the optimizer) stays f32.
public enum MatmulPrecision: String, Sendable, Codable, CaseIterable {
    case fp32, bf16
}

/// bfloat16: the upper 16 bits of an IEEE f32 (8 exponent bits, 7 mantissa bits).
public enum BF16 {
    /// `x` rounded to the nearest bf16, ties to even; NaN stays NaN (quiet), ±∞ stays ±∞.
    @inlinable @inline(__always)
    public static func bits(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: u >> 16) | 0x0040 }
        let rounded = u &+ 0x7FFF &+ ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    @inlinable @inline(__always)
    public static func float(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// `x` rounded to bf16 and back.
    @inlinable @inline(__always)
    public static func rounded(_ x: Float) -> Float { float(bits(x)) }

    /// dst[i] = bits(src[i]) for `count` values, in fixed chunks on the kernel threads.
    public static func convert(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<UInt16>, count: Int) {
        Parallel.forEach(count: count, chunkSize: VectorMath.elementChunk) { range in
            for i in range { dst[i] = bits(src[i]) }
        }
    }

    /// dst[i] = rounded(src[i]).
    public static func round(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEach(count: count, chunkSize: VectorMath.elementChunk) { range in
            for i in range { dst[i] = rounded(src[i]) }
        }
    }
}

extension Kernels {
    /// Threads for the matrix products issued from this thread: OpenBLAS's and oneDNN's.
    public static func setMatmulThreads(_ n: Int) {
        BLAS.setThreads(n)
        OneDNN.setThreads(n)
    }

    /// How a bf16 matmul is executed on this machine.
    public enum BF16Route: String, Sendable {
        /// oneDNN's bf16 matmul primitive (`avx512_bf16` or AMX instructions).
        case oneDNN = "onednn"
        /// The operands rounded to bf16 and multiplied by OpenBLAS `sgemm` in f32: the same values as a
        /// bf16 product with f32 accumulation (a product of two bf16 numbers is exact in f32), only the
        /// summation order differs. Used where the CPU has no bf16 instructions.
        case roundedSGEMM = "rounded-sgemm"
    }

    /// The route of bf16 matmuls: oneDNN where the CPU has bf16 instructions and oneDNN's matmul
    /// computes a check product correctly, else rounded sgemm. Settable (tests compare the two).
    public static var bf16Route: BF16Route {
        get { bf16Configuration.withLock { $0.route } }
        set { bf16Configuration.withLock { $0.route = newValue } }
    }

    final class BF16Configuration: @unchecked Sendable {
        let lock = NSLock()
        var route: BF16Route = OneDNN.hasNativeBF16 && OneDNN.works() ? .oneDNN : .roundedSGEMM
        /// Operand buffers, grown on demand and reused (one matmul at a time holds them).
        var buffers: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []

        func withLock<R>(_ body: (BF16Configuration) throws -> R) rethrows -> R {
            lock.lock()
            defer { lock.unlock() }
            return try body(self)
        }

        /// Buffer `i`, at least `bytes` long.
        func buffer(_ i: Int, bytes: Int) -> UnsafeMutableRawPointer {
            while buffers.count <= i { buffers.append((UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64), 64)) }
            if buffers[i].bytes < bytes {
                buffers[i].pointer.deallocate()
                buffers[i] = (UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes)
            }
            return buffers[i].pointer
        }
    }

    static let bf16Configuration = BF16Configuration()

    /// Bytes of the operand buffers bf16 matmuls hold (the largest operands seen so far).
    public static var bf16WorkspaceBytes: Int { bf16Configuration.withLock { $0.buffers.reduce(0) { $0 + $1.bytes } } }

    /// An operand of a bf16 matmul: `count` f32 values from `values`, each used in one or more products.
    struct BF16Operand {
        var values: UnsafePointer<Float>
        var count: Int
    }

    /// Rounds `operands` once into the reusable buffers, then runs `body` with them: bf16 bits for
    /// the oneDNN route, rounded f32 for the rounded-sgemm route.
    static func withBF16(_ operands: [BF16Operand], _ body: (BF16Route, [UnsafeRawPointer]) -> Void) {
        bf16Configuration.withLock { conf in
            let route = conf.route
            var converted: [UnsafeRawPointer] = []
            for (i, o) in operands.enumerated() {
                switch route {
                case .oneDNN:
                    let p = conf.buffer(i, bytes: o.count * 2).bindMemory(to: UInt16.self, capacity: o.count)
                    BF16.convert(o.values, to: p, count: o.count)
                    converted.append(UnsafeRawPointer(p))
                case .roundedSGEMM:
                    let p = conf.buffer(i, bytes: o.count * 4).bindMemory(to: Float.self, capacity: o.count)
                    BF16.round(o.values, to: p, count: o.count)
                    converted.append(UnsafeRawPointer(p))
                }
            }
            body(route, converted)
        }
    }

    /// A product of operands already converted by `withBF16`.
    static func bf16Product(_ route: BF16Route, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, lda: Int,
                            b: UnsafeRawPointer, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch route {
        case .oneDNN:
            do {
                try OneDNN.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.assumingMemoryBound(to: UInt16.self), lda: lda,
                                b: b.assumingMemoryBound(to: UInt16.self), ldb: ldb, accumulate: accumulate, c: c, ldc: ldc)
            } catch {
                // The route is oneDNN only after `OneDNN.works()`; a failure here is a broken installation.
                fatalError("\(error) for a \(m)×\(k) · \(k)×\(n) bf16 matmul")
            }
        case .roundedSGEMM:
            BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a.assumingMemoryBound(to: Float.self), lda: lda,
                       b: b.assumingMemoryBound(to: Float.self), ldb: ldb, beta: accumulate ? 1 : 0, c: c, ldc: ldc)
        }
    }

    /// Values a row-major operand of `rows` stored rows with stride `ld` and `columns` used columns spans.
    @inline(__always)
    static func span(rows: Int, columns: Int, ld: Int) -> Int { rows == 0 ? 0 : (rows - 1) * ld + columns }

    /// C (m×n) = op(A) · op(B) + beta · C (beta 0 or 1), row-major as `BLAS.sgemm`, at `precision`.
    /// A is stored as `transA ? k : m` rows of stride `lda`, B as `transB ? n : k` rows of stride `ldb`.
    public static func gemm(_ precision: MatmulPrecision, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch precision {
        case .fp32:
            BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case .bf16:
            precondition(beta == 0 || beta == 1, "bf16 gemm accumulates with beta 0 or 1")
            guard m > 0, n > 0 else { return }
            let aCount = span(rows: transA ? k : m, columns: transA ? m : k, ld: lda)
            let bCount = span(rows: transB ? n : k, columns: transB ? k : n, ld: ldb)
            withBF16([BF16Operand(values: a, count: aCount), BF16Operand(values: b, count: bCount)]) { route, p in
                bf16Product(route, transA: transA, transB: transB, m: m, n: n, k: k, a: p[0], lda: lda, b: p[1], ldb: ldb,
                            accumulate: beta != 0, c: c, ldc: ldc)
            }
        }
    }
}
