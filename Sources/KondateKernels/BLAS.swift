import COpenBLAS
import Foundation

/// OpenBLAS, with its thread count set deliberately (small matrices run faster on one thread, and
/// OpenBLAS's own pool must not fight the elementwise pool for the cores).
public enum BLAS {
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// The kernel family OpenBLAS chose at load time (e.g. SkylakeX, Haswell, Prescott).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
    /// OpenBLAS's build configuration string (version, threading, dynamic architecture).
    public static var configuration: String { openblas_get_config().map { String(cString: $0) } ?? "unknown" }

    /// The `OPENBLAS_CORETYPE` this CPU should use when OpenBLAS's own detection does not know the CPU.
    ///
    /// OpenBLAS builds with dynamic architecture pick kernels from the CPU model number when the
    /// library loads; a model newer than the library (Debian 12's 0.3.21 on recent Xeons) falls back
    /// to the generic Prescott kernels, 5–6× slower for `sgemm`. The instruction-set flags say what
    /// the CPU can run: AVX-512 (F, BW, DQ, VL) → SkylakeX; AVX2 with FMA → Haswell; otherwise nil.
    public static func coreTypeForThisCPU(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String? {
        guard let cpuinfo, let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Whether OpenBLAS fell back to generic kernels on a CPU that can run better ones.
    public static var usesGenericKernels: Bool { ["Prescott", "Core2", "Nehalem"].contains(coreName) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS on one thread, then restores the previous thread count. For regions
    /// that call BLAS from several `Parallel` threads at once, where each call should stay on the
    /// thread that made it. Regions may overlap (from different threads or nested): the count drops to
    /// one when the first starts and is restored when the last ends.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadRegions.enter()
        defer { singleThreadRegions.leave() }
        return try body()
    }

    /// Counts the open `singleThreaded` regions and remembers the thread count to restore.
    private final class SingleThreadRegions: @unchecked Sendable {
        let lock = NSLock()
        var open = 0
        var saved = 1

        func enter() {
            lock.lock()
            defer { lock.unlock() }
            if open == 0 {
                saved = BLAS.threads
                if saved != 1 { BLAS.setThreads(1) }
            }
            open += 1
        }

        func leave() {
            lock.lock()
            defer { lock.unlock() }
            open -= 1
            if open == 0, saved != 1 { BLAS.setThreads(saved) }
        }
    }

    private static let singleThreadRegions = SingleThreadRegions()

    /// C (m×n) = alpha · op(A) · op(B) + beta · C, row-major; op(X) is Xᵀ when `trans…` is true.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored.
    @inline(__always)
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
