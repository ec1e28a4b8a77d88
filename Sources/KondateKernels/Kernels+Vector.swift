import Foundation

/// Vectorised building blocks for the kernels: row reductions with a fixed summation order (so a
/// result depends only on the data and the length, never on the thread that computes it) and an
/// `exp` for four lanes at a time. Four lanes match SSE, the baseline on x86-64, where they compile
/// to single instructions; wider vectors split into shuffles there.
package enum VectorMath {
    package typealias Vec = SIMD4<Float>

    /// Elements per chunk for elementwise kernels. Fixed so that chunk boundaries, and with them every
    /// result, do not depend on the thread count.
    package static let elementChunk = 16_384

    /// Rows per chunk for row-wise kernels whose rows are `width` values long.
    @inlinable @inline(__always)
    package static func rowChunk(width: Int) -> Int { max(1, elementChunk / max(1, width)) }

    /// Rows per chunk for row-wise kernels that also reduce over rows into per-chunk partials of
    /// `width` values: at most 64 chunks, so the scratch stays at 64 rows of partials.
    @inlinable @inline(__always)
    package static func reductionRowChunk(rows: Int, width: Int) -> Int {
        max(rowChunk(width: width), (rows + 63) / 64)
    }

    @inlinable @inline(__always)
    package static func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

    @inlinable @inline(__always)
    package static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }

    /// The sum of the four lanes, in a fixed pairwise order.
    @inlinable @inline(__always)
    package static func horizontalSum(_ v: Vec) -> Float {
        let h = v.lowHalf + v.highHalf
        return h[0] + h[1]
    }

    /// The largest of the four lanes.
    @inlinable @inline(__always)
    package static func horizontalMax(_ v: Vec) -> Float {
        let a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3]
        return a > b ? a : b
    }

    /// Σ f(i) over `0..<n`, where `f` gives four lanes starting at `i`, and `tail` gives one value.
    /// Sixteen lanes accumulate independently, then combine in a fixed order.
    @inlinable @inline(__always)
    package static func reduce(_ n: Int, _ f: (Int) -> Vec, _ tail: (Int) -> Float) -> Float {
        var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
        var i = 0
        while i + 16 <= n {
            a0 += f(i)
            a1 += f(i + 4)
            a2 += f(i + 8)
            a3 += f(i + 12)
            i += 16
        }
        while i + 4 <= n {
            a0 += f(i)
            i += 4
        }
        var total = horizontalSum((a0 + a1) + (a2 + a3))
        while i < n {
            total += tail(i)
            i += 1
        }
        return total
    }

    /// Σ x.
    @inlinable @inline(__always)
    package static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        reduce(n, { load(x + $0) }, { x[$0] })
    }

    /// Σ x².
    @inlinable @inline(__always)
    package static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        reduce(n, { let v = load(x + $0); return v * v }, { x[$0] * x[$0] })
    }

    /// Σ (x − m)².
    @inlinable @inline(__always)
    package static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, _ n: Int, from m: Float) -> Float {
        reduce(n, { let v = load(x + $0) - m; return v * v }, { let d = x[$0] - m; return d * d })
    }

    /// Σ a·b.
    @inlinable @inline(__always)
    package static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        reduce(n, { load(a + $0) * load(b + $0) }, { a[$0] * b[$0] })
    }

    /// Σ a·b·c.
    @inlinable @inline(__always)
    package static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
        reduce(n, { load(a + $0) * load(b + $0) * load(c + $0) }, { a[$0] * b[$0] * c[$0] })
    }

    /// max x (−∞ for n = 0). NaN values are skipped here; callers feed x − max into `exp`, which
    /// turns them back into NaN.
    @inlinable @inline(__always)
    package static func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m0 = Vec(repeating: -.infinity), m1 = m0
        var i = 0
        while i + 8 <= n {
            let v0 = load(x + i), v1 = load(x + i + 4)
            m0.replace(with: v0, where: v0 .> m0)
            m1.replace(with: v1, where: v1 .> m1)
            i += 8
        }
        m0.replace(with: m1, where: m1 .> m0)
        var result = horizontalMax(m0)
        while i < n {
            if x[i] > result { result = x[i] }
            i += 1
        }
        return result
    }

    /// dst = exp(src − m) over n values (dst may equal src); returns Σ dst.
    @inlinable @inline(__always)
    package static func expSubtracting(_ m: Float, from src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        reduce(n, { i in
            let e = exp(load(src + i) - m)
            store(e, dst + i)
            return e
        }, { i in
            let e = exp(src[i] - m)
            dst[i] = e
            return e
        })
    }

    /// eˣ for four lanes: Cody–Waite reduction x = n·ln 2 + r with |r| ≤ ln 2 / 2 and the Cephes `expf`
    /// polynomial for eʳ, within about 1 ulp of `expf`. Below −87.3 gives 0 (no subnormals), above
    /// 88.37 gives +∞ (the largest finite results are not needed by any kernel), NaN stays NaN.
    @inlinable @inline(__always)
    package static func exp(_ x: Vec) -> Vec {
        // Adding 1.5·2²³ rounds x·log₂e to an integer held in the low mantissa bits.
        let magic: Float = 12_582_912
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = Vec(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * (r * r) + r + 1
        let k = unsafeBitCast(t, to: SIMD4<Int32>.self) &- unsafeBitCast(Vec(repeating: magic), to: SIMD4<Int32>.self)
        let scale = unsafeBitCast((k &+ 127) &<< 23, to: Vec.self)
        var result = y * scale
        result.replace(with: 0, where: x .< -87.336_54)
        result.replace(with: .infinity, where: x .> 88.376_26)
        return result
    }

    /// exp for one value, through the vector path so that scalar tails round exactly like the lanes.
    @inlinable @inline(__always)
    package static func exp(_ x: Float) -> Float { exp(Vec(repeating: x))[0] }

    /// tanh through exp: 1 − 2 / (e²ᵘ + 1), saturating to ±1.
    @inlinable @inline(__always)
    package static func tanh(_ u: Vec) -> Vec { 1 - 2 / (exp(2 * u) + 1) }

    /// erf for four lanes: a rational approximation (odd degree-13 numerator over even degree-8
    /// denominator, the form used by Eigen and XLA) on x clamped to [−4, 4], where erf is ±1 in Float;
    /// absolute error below 5·10⁻⁷.
    @inlinable @inline(__always)
    package static func erf(_ x: Vec) -> Vec {
        var c = x
        c.replace(with: 4, where: x .> 4)
        c.replace(with: -4, where: x .< -4)
        let x2 = c * c
        var p = x2 * -2.726_142_258_013_06e-10 + 2.770_681_424_959_02e-08
        p = x2 * p - 2.101_024_020_825_08e-06
        p = x2 * p - 5.692_506_394_623_46e-05
        p = x2 * p - 7.349_906_303_268_55e-04
        p = x2 * p - 2.954_599_808_540_25e-03
        p = x2 * p - 1.609_603_332_624_15e-02
        var q = x2 * -1.456_607_184_649_96e-05 - 2.133_740_552_789_05e-04
        q = x2 * q - 1.682_826_974_382_03e-03
        q = x2 * q - 7.373_329_167_204_68e-03
        q = x2 * q - 1.426_473_905_141_89e-02
        return c * p / q
    }

    /// GELU with the tanh approximation: x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
    @inlinable @inline(__always)
    package static func geluTanh(_ x: Vec) -> Vec {
        let th = tanh(Kernels.sqrt2OverPi * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1 + th)
    }

    /// d/dx of `geluTanh`.
    @inlinable @inline(__always)
    package static func geluTanhDerivative(_ x: Vec) -> Vec {
        let x2 = x * x
        let th = tanh(Kernels.sqrt2OverPi * (x + 0.044715 * x2 * x))
        let sech2 = 1 - th * th
        let inner = Kernels.sqrt2OverPi * (1 + (3 * 0.044715) * x2)
        return 0.5 * (1 + th) + 0.5 * x * sech2 * inner
    }

    /// Exact GELU: x/2 · (1 + erf(x/√2)).
    @inlinable @inline(__always)
    package static func geluErf(_ x: Vec) -> Vec { 0.5 * x * (1 + erf(x * 0.707_106_781_186_547_6)) }

    /// d/dx of `geluErf`: Φ(x) + x·φ(x).
    @inlinable @inline(__always)
    package static func geluErfDerivative(_ x: Vec) -> Vec {
        let cdf = 0.5 * (1 + erf(x * 0.707_106_781_186_547_6))
        let pdf = exp(-0.5 * x * x) * 0.398_942_280_401_432_7
        return cdf + x * pdf
    }

    /// Loads `count` (≤ 4) values, zero-filling the remaining lanes. Elementwise kernels step by four
    /// with count = min(4, n − i), so the last, partial group runs through the same vector code.
    @inlinable @inline(__always)
    package static func load(_ p: UnsafePointer<Float>, _ count: Int) -> Vec {
        count == 4 ? load(p) : loadPartial(p, count)
    }

    /// Stores the first `count` (≤ 4) lanes.
    @inlinable @inline(__always)
    package static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count == 4 { store(v, p) } else { storePartial(v, p, count) }
    }

    /// The cold path of `load(_:_:)`, kept out of line so that it does not disturb the vector loop.
    @inline(never)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> Vec {
        var v = Vec()
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    /// The cold path of `store(_:_:_:)`.
    @inline(never)
    static func storePartial(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for j in 0..<count { p[j] = v[j] }
    }
}

extension VectorMath {
    /// Columns per chunk when a kernel is parallelised over output columns.
    package static let columnChunk = 256

    /// Runs `body` with `count` floats of scratch (zeroed unless `zeroed` is false), freed afterwards.
    @inlinable @inline(__always)
    package static func withScratch<R>(_ count: Int, zeroed: Bool = true, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        if zeroed { p.initialize(repeating: 0, count: max(1, count)) }
        defer { p.deallocate() }
        return try body(p)
    }

    /// dst (width) += Σ over `chunks` partial rows of `partials` (chunks, width), the partials added
    /// in chunk order for every column (summed into the first partial row, which is overwritten);
    /// parallel over column ranges.
    static func addPartials(_ partials: UnsafeMutablePointer<Float>, chunks: Int, width: Int, into dst: UnsafeMutablePointer<Float>) {
        guard chunks > 0 else { return }
        Parallel.forEach(count: width, chunkSize: columnChunk) { cols in
            let total = partials + cols.lowerBound
            for k in 1..<chunks {
                let partial = partials + k * width + cols.lowerBound
                for o in 0..<cols.count { total[o] += partial[o] }
            }
            let d = dst + cols.lowerBound
            for o in 0..<cols.count { d[o] += total[o] }
        }
    }
}
