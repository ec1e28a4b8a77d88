import Foundation
import KondateKernels
import KondateModel

/// AdamW with decoupled weight decay, as `torch.optim.AdamW` computes it:
/// p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
/// Norm weights and biases get no decay unless `decayNormsAndBiases` (Megatron and the HF Trainer
/// exclude them). The moments live in one allocation each, with the parameter layout's offsets.
public final class AdamW: @unchecked Sendable {
    public struct Hyperparameters: Sendable, Equatable, Codable {
        public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
        public var decayNormsAndBiases: Bool
        public init(beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1, decayNormsAndBiases: Bool = false) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
            self.decayNormsAndBiases = decayNormsAndBiases
        }
    }

    public let hyper: Hyperparameters
    public let layout: ParameterLayout
    /// The part of the parameter buffer this optimizer updates: all of it, or a ZeRO-1 shard.
    public let range: Range<Int>
    /// Moments of the parameters in `range` (index 0 is the parameter at `range.lowerBound`).
    public let m: UnsafeMutableBufferPointer<Float>
    public let v: UnsafeMutableBufferPointer<Float>
    /// Updates taken so far (the t of the bias corrections).
    public var step = 0

    public init(layout: ParameterLayout, hyper: Hyperparameters, range: Range<Int>? = nil) {
        self.layout = layout
        self.hyper = hyper
        self.range = range ?? 0..<layout.count
        m = .allocate(capacity: self.range.count)
        v = .allocate(capacity: self.range.count)
        m.initialize(repeating: 0)
        v.initialize(repeating: 0)
    }

    deinit {
        m.deallocate()
        v.deallocate()
    }

    /// One update of the parameters in `range` from `gradients` at learning rate `lr` (both buffers
    /// in the layout's offsets).
    public func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, lr: Float) {
        update(parameters: parameters, gradients: UnsafeMutablePointer(mutating: gradients.baseAddress!), lr: lr)
    }

    /// As above, with `gradients` addressed by layout offsets and read only over `range` (a ZeRO-2 shard
    /// passes its buffer's start minus `range.lowerBound`).
    public func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        step += 1
        let b1 = hyper.beta1, b2 = hyper.beta2, eps = hyper.eps
        let bc1 = 1 - powf(b1, Float(step)), bc2 = 1 - powf(b2, Float(step))
        let stepSize = lr / bc1, bc2Root = bc2.squareRoot()
        // Moments are indexed from the range's start.
        let p = parameters.baseAddress!, g = gradients, mm = m.baseAddress! - range.lowerBound, vv = v.baseAddress! - range.lowerBound
        for t in layout.tensors {
            let lo = max(t.offset, range.lowerBound), hi = min(t.offset + t.count, range.upperBound)
            guard lo < hi else { continue }
            let decay: Float = (t.isNormOrBias && !hyper.decayNormsAndBiases) ? 0 : hyper.weightDecay
            let keep = 1 - lr * decay
            Parallel.forEach(count: hi - lo, chunkSize: 1 << 14) { chunk in
                for i in chunk.lowerBound + lo ..< chunk.upperBound + lo {
                    let gi = g[i]
                    let mi = b1 * mm[i] + (1 - b1) * gi
                    let vi = b2 * vv[i] + (1 - b2) * gi * gi
                    mm[i] = mi
                    vv[i] = vi
                    p[i] = p[i] * keep - stepSize * mi / (vi.squareRoot() / bc2Root + eps)
                }
            }
        }
    }
}

/// Learning rate per step: linear warm-up from lr/warmup to lr over `warmupSteps` (Megatron's
/// `lr · step / warmup` with steps counted from 1), then cosine or linear decay to `minLR` at
/// `decaySteps`, or constant.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case cosine, linear, constant }
    public var kind: Kind
    public var maxLR: Double
    public var minLR: Double
    public var warmupSteps: Int
    public var decaySteps: Int

    public init(kind: Kind, maxLR: Double, minLR: Double = 0, warmupSteps: Int = 0, decaySteps: Int) {
        self.kind = kind
        self.maxLR = maxLR
        self.minLR = minLR
        self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps
    }

    /// The rate for step `step` (0-based).
    public func lr(at step: Int) -> Double {
        if step < warmupSteps { return maxLR * Double(step + 1) / Double(warmupSteps) }
        if kind == .constant { return maxLR }
        let span = max(1, decaySteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        switch kind {
        case .cosine: return minLR + (maxLR - minLR) * 0.5 * (1 + cos(Double.pi * progress))
        case .linear: return maxLR - (maxLR - minLR) * progress
        case .constant: return maxLR
        }
    }
}

public enum GradientTools {
    /// √Σg² over the whole buffer, summed in Double over fixed-size chunks combined in order, so the
    /// result does not depend on the thread count.
    public static func globalNorm(_ g: UnsafeBufferPointer<Float>) -> Double {
        Parallel.sum(count: g.count, chunkSize: 1 << 15) { range in
            var s: Double = 0
            var partial: Float = 0
            var k = 0
            for i in range {
                partial += g[i] * g[i]
                k += 1
                if k == 256 { s += Double(partial); partial = 0; k = 0 }
            }
            return s + Double(partial)
        }.squareRoot()
    }

    /// Multiplies every gradient by `factor`.
    public static func scale(_ g: UnsafeMutableBufferPointer<Float>, by factor: Float) {
        let base = g.baseAddress!
        Parallel.forEach(count: g.count, chunkSize: 1 << 15) { range in
            for i in range { base[i] *= factor }
        }
    }
}
