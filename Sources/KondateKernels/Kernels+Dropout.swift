import Foundation

/// Counter-based dropout masks: whether an element is kept is a hash of (seed, step, site, element),
/// never a draw from a stateful generator. A mask is therefore the same whatever the thread count,
/// the micro-batch size, the data-parallel rank that computes it or a resume in between, and the
/// backward pass (or a recomputed forward) regenerates it instead of storing it.
public struct DropoutMask: Sendable, Equatable {
    /// The element keys of one dropout site in one step.
    public let base: UInt64
    /// Drop probability; kept elements are scaled by 1 / (1 − p) (inverted dropout, as PyTorch).
    public let p: Float
    public let scale: Float
    /// Elements with `hash >> 40 < threshold` are dropped (a 24-bit uniform against p).
    let threshold: UInt64

    public init(seed: UInt64, step: Int, site: Int, p: Float) {
        base = DropoutMask.mix(DropoutMask.mix(DropoutMask.mix(seed ^ 0x6B6F_6E64_6174_6521) &+ UInt64(step)) &+ UInt64(site))
        self.p = p
        scale = p < 1 ? 1 / (1 - p) : 0
        threshold = UInt64((Double(p) * Double(1 << 24)).rounded())
    }

    /// SplitMix64's finaliser.
    @inlinable @inline(__always)
    static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The factor of element `index`: 0 (dropped) or 1 / (1 − p).
    @inline(__always)
    public func factor(_ index: Int) -> Float {
        (DropoutMask.mix(base ^ UInt64(index)) >> 40) < threshold ? 0 : scale
    }

    /// x[r · width + c] *= factor((firstRow + r) · width + c) for `rows` rows: element keys are global
    /// positions, so a shard of rows computes the same mask as the whole.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, firstRow: Int) {
        Parallel.forEach(count: rows, chunkSize: VectorMath.rowChunk(width: width)) { range in
            for r in range {
                let row = x + r * width, key = (firstRow + r) * width
                for c in 0..<width { row[c] *= factor(key + c) }
            }
        }
    }
}

/// Dropout of the attention probabilities: the mask of (global batch row, global head, query, key).
public struct AttentionDropout: Sendable {
    public var mask: DropoutMask
    /// The global index of the first batch row and of the first head this call computes.
    public var firstRow: Int
    public var firstHead: Int
    /// Heads of the whole model (over every tensor-parallel rank).
    public var totalHeads: Int

    public init(mask: DropoutMask, firstRow: Int, firstHead: Int, totalHeads: Int) {
        self.mask = mask
        self.firstRow = firstRow
        self.firstHead = firstHead
        self.totalHeads = totalHeads
    }

    /// The key of element (query i, key j) of local batch row `bi`, local head `h`, for sequence length `t`.
    @inline(__always)
    func rowKey(bi: Int, h: Int, i: Int, t: Int) -> Int { (((firstRow + bi) * totalHeads + firstHead + h) * t + i) * t }
}
