import CDNNL
import Foundation

/// bf16 matrix products through oneDNN's matmul primitive (C API, Debian 12's libdnnl 2.6.3):
/// C (f32) = op(A) · op(B) [+ C], with A and B in bf16 and products accumulated in f32.
///
/// One CPU engine and one stream serve the process. A primitive is created once per shape (sizes,
/// transposes, strides, accumulation) and kept; each call rebinds the memory objects to the caller's
/// buffers. oneDNN threads with OpenMP; `setThreads` sets its count.
///
/// Determinism: for a given shape and thread count oneDNN's matmul computes the same bits on every
/// call (no atomics, a fixed blocking). Its blocking, and with it the summation order, may change with
/// the thread count, so bf16 results are bitwise reproducible at a fixed `threads`, not across thread
/// counts (fp32, on `Kernels`' own reductions and OpenBLAS, is reproducible across both).
public enum OneDNN {
    /// A failed oneDNN call: which one and its status.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var call: String
        public var status: Int
        public var description: String { "oneDNN \(call) failed (status \(status))" }
    }

    /// The CPU instruction set oneDNN dispatches to (e.g. `avx512_core_bf16`).
    public static var isa: String {
        let v = dnnl_get_effective_cpu_isa().rawValue
        let names: [(UInt32, String)] = [(0x407, "avx2_vnni"), (0x3e7, "avx512_core_amx"), (0xe7, "avx512_core_bf16"), (0x67, "avx512_core_vnni"),
                                         (0x27, "avx512_core"), (0x7, "avx2"), (0x3, "avx"), (0x1, "sse41")]
        return names.first { v & $0.0 == $0.0 }?.1 ?? "generic"
    }

    /// Whether the CPU has bf16 dot-product instructions (`avx512_bf16` or AMX), which oneDNN's bf16
    /// matmul needs to run faster than f32.
    public static var hasNativeBF16: Bool {
        let v = dnnl_get_effective_cpu_isa().rawValue
        return v & 0xe7 == 0xe7 || v & 0x3e7 == 0x3e7
    }

    /// Whether a small bf16 matmul runs and gives the exact answer (its operands and result are
    /// representable): the check made before choosing oneDNN for bf16.
    public static func works() -> Bool {
        // (2×3) · (3×2): [[1, 2, 3], [4, 5, 6]] · [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]].
        let a: [UInt16] = [1, 2, 3, 4, 5, 6].map { UInt16(truncatingIfNeeded: Float($0).bitPattern >> 16) }
        let b: [UInt16] = [1, 0, 0, 1, 1, 1].map { UInt16(truncatingIfNeeded: Float($0).bitPattern >> 16) }
        var c = [Float](repeating: -1, count: 4)
        do {
            try c.withUnsafeMutableBufferPointer { pc in
                try gemm(transA: false, transB: false, m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, accumulate: false, c: pc.baseAddress!, ldc: 2)
            }
        } catch {
            return false
        }
        return c == [4, 5, 10, 11]
    }

    /// The library's version, as `major.minor.patch`.
    public static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// oneDNN's OpenMP thread count, for matmuls called from this thread (OpenMP keeps the setting per
    /// calling thread).
    public static func setThreads(_ n: Int) { _ = kondate_omp_set_num_threads(Int32(max(1, n))) }

    struct Key: Hashable {
        var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int, accumulate: Bool
    }

    /// One created primitive with its three memory objects (their data handles are set per call).
    final class Matmul {
        let primitive: dnnl_primitive_t
        let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t

        init(_ key: Key, engine: dnnl_engine_t) throws(Failure) {
            func check(_ status: dnnl_status_t, _ call: String) throws(Failure) {
                if status != dnnl_success { throw Failure(call: call, status: Int(status.rawValue)) }
            }
            // Row-major logical shapes (m, k), (k, n), (m, n); a transposed operand is described by its strides.
            var aDesc = dnnl_memory_desc_t(), bDesc = dnnl_memory_desc_t(), cDesc = dnnl_memory_desc_t()
            let aStrides: [Int64] = key.transA ? [1, Int64(key.lda)] : [Int64(key.lda), 1]
            let bStrides: [Int64] = key.transB ? [1, Int64(key.ldb)] : [Int64(key.ldb), 1]
            try check(dnnl_memory_desc_init_by_strides(&aDesc, 2, [Int64(key.m), Int64(key.k)], dnnl_bf16, aStrides), "memory_desc_init (A)")
            try check(dnnl_memory_desc_init_by_strides(&bDesc, 2, [Int64(key.k), Int64(key.n)], dnnl_bf16, bStrides), "memory_desc_init (B)")
            try check(dnnl_memory_desc_init_by_strides(&cDesc, 2, [Int64(key.m), Int64(key.n)], dnnl_f32, [Int64(key.ldc), 1]), "memory_desc_init (C)")
            var op = dnnl_matmul_desc_t()
            try check(dnnl_matmul_desc_init(&op, &aDesc, &bDesc, nil, &cDesc), "matmul_desc_init")
            var attr: dnnl_primitive_attr_t?
            try check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
            defer { dnnl_primitive_attr_destroy(attr) }
            if key.accumulate {
                var postOps: dnnl_post_ops_t?
                try check(dnnl_post_ops_create(&postOps), "post_ops_create")
                defer { dnnl_post_ops_destroy(postOps) }
                try check(dnnl_post_ops_append_sum(postOps, 1), "post_ops_append_sum")
                try check(dnnl_primitive_attr_set_post_ops(attr, postOps), "primitive_attr_set_post_ops")
            }
            var pd: dnnl_primitive_desc_t?
            try check(withUnsafePointer(to: &op) { dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr, engine, nil) }, "primitive_desc_create (matmul)")
            defer { dnnl_primitive_desc_destroy(pd) }
            var p: dnnl_primitive_t?
            try check(dnnl_primitive_create(&p, pd), "primitive_create (matmul)")
            var ma: dnnl_memory_t?, mb: dnnl_memory_t?, mc: dnnl_memory_t?
            try check(dnnl_memory_create(&ma, &aDesc, engine, nil), "memory_create (A)")
            try check(dnnl_memory_create(&mb, &bDesc, engine, nil), "memory_create (B)")
            try check(dnnl_memory_create(&mc, &cDesc, engine, nil), "memory_create (C)")
            primitive = p!
            a = ma!
            b = mb!
            c = mc!
        }

        deinit {
            dnnl_memory_destroy(a)
            dnnl_memory_destroy(b)
            dnnl_memory_destroy(c)
            dnnl_primitive_destroy(primitive)
        }
    }

    /// The engine, the stream and the primitives made so far, behind one lock.
    final class State: @unchecked Sendable {
        let lock = NSLock()
        var engine: dnnl_engine_t?
        var stream: dnnl_stream_t?
        var startFailure: Failure?
        var primitives: [Key: Matmul] = [:]

        init() {
            var e: dnnl_engine_t?
            guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let e else {
                startFailure = Failure(call: "engine_create", status: -1)
                return
            }
            var s: dnnl_stream_t?
            guard dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue) == dnnl_success, let s else {
                dnnl_engine_destroy(e)
                startFailure = Failure(call: "stream_create", status: -1)
                return
            }
            engine = e
            stream = s
        }
    }

    static let state = State()

    /// Primitives created so far (one per distinct shape).
    public static var primitiveCount: Int {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.primitives.count
    }

    /// C (m×n, f32, row stride `ldc`) = op(A) · op(B), plus C when `accumulate`; A and B bf16, row-major
    /// as stored with row strides `lda`, `ldb` (op(X) = Xᵀ when `trans…`).
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                            accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) throws(Failure) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let key = Key(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc, accumulate: accumulate)
        state.lock.lock()
        defer { state.lock.unlock() }
        if let failure = state.startFailure { throw failure }
        let matmul: Matmul
        if let made = state.primitives[key] {
            matmul = made
        } else {
            matmul = try Matmul(key, engine: state.engine!)
            state.primitives[key] = matmul
        }
        func check(_ status: dnnl_status_t, _ call: String) throws(Failure) {
            if status != dnnl_success { throw Failure(call: call, status: Int(status.rawValue)) }
        }
        try check(dnnl_memory_set_data_handle(matmul.a, UnsafeMutableRawPointer(mutating: a)), "memory_set_data_handle (A)")
        try check(dnnl_memory_set_data_handle(matmul.b, UnsafeMutableRawPointer(mutating: b)), "memory_set_data_handle (B)")
        try check(dnnl_memory_set_data_handle(matmul.c, UnsafeMutableRawPointer(c)), "memory_set_data_handle (C)")
        let args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: matmul.a), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: matmul.b),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: matmul.c)]
        try check(dnnl_primitive_execute(matmul.primitive, state.stream, Int32(args.count), args), "primitive_execute (matmul)")
        try check(dnnl_stream_wait(state.stream), "stream_wait")
    }
}
