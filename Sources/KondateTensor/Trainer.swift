import Foundation

/// One micro-batch: `batch` rows of `seq` input tokens and their targets (−100: not scored).
public struct MicroBatch: Sendable {
    public var tokens: [Int32]
    public var targets: [Int32]
    public var batch: Int
    public init(tokens: [Int32], targets: [Int32], batch: Int) {
        self.tokens = tokens
        self.targets = targets
        self.batch = batch
    }

    /// Inputs and next-token targets from samples of seq + 1 tokens (Megatron's GPTDataset samples).
    public init(samples: [[Int32]]) {
        batch = samples.count
        tokens = samples.flatMap { $0.dropLast() }
        targets = samples.flatMap { $0.dropFirst() }
    }

    public var counted: Int { targets.reduce(0) { $0 + ($1 == Kernels.ignoreIndex ? 0 : 1) } }
}

extension Kernels {
    /// The label value that is not scored (PyTorch's `ignore_index` default).
    public static let ignoreIndex: Int32 = -100
}

public struct TrainingOptions: Sendable, Equatable {
    public enum NaNPolicy: String, Sendable, Codable { case skip, stop }
    public var schedule: LearningRateSchedule
    public var adamw: AdamW.Hyperparameters
    /// Clip the global gradient norm to this value (0: no clipping), as `clip_grad_norm_`.
    public var gradClip: Double
    public var nanPolicy: NaNPolicy

    public init(schedule: LearningRateSchedule, adamw: AdamW.Hyperparameters, gradClip: Double = 1.0, nanPolicy: NaNPolicy = .stop) {
        self.schedule = schedule
        self.adamw = adamw
        self.gradClip = gradClip
        self.nanPolicy = nanPolicy
    }
}

public struct StepReport: Sendable {
    public var step: Int
    public var loss: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    public var lr: Double
    public var tokens: Int
    public var skipped: Bool
    public var seconds: Double
}

public enum TrainingError: Error, CustomStringConvertible, Sendable {
    case nonFinite(step: Int, loss: Double, gradNorm: Double)
    case noTargets(step: Int)
    case model(ModelError)

    public var description: String {
        switch self {
        case let .nonFinite(step, loss, gradNorm):
            "step \(step): the loss (\(loss)) or the gradient norm (\(gradNorm)) is not finite; lower the learning rate, " +
                "check the data, or set pretrain.nan_policy: skip to skip such steps"
        case let .noTargets(step): "step \(step): the batch has no scored tokens (every target is -100)"
        case let .model(e): e.description
        }
    }
}

/// The training loop's step: gradient accumulation over micro-batches (the loss is the mean over all
/// scored tokens of the global batch, as one big batch would give), global-norm clipping, the NaN
/// policy, the learning-rate schedule and AdamW.
public final class Trainer: @unchecked Sendable {
    public let model: any TrainableModel
    public let optimizer: AdamW
    public let options: TrainingOptions
    /// Steps taken (including skipped ones); the next step's index.
    public var step = 0
    /// Wall time of the last step's clipping and optimizer update.
    public private(set) var lastUpdateSeconds = 0.0

    public init(model: any TrainableModel, options: TrainingOptions) {
        self.model = model
        self.options = options
        optimizer = AdamW(layout: model.layout, hyper: options.adamw)
    }

    public func step(_ microBatches: [MicroBatch], seq: Int) throws(TrainingError) -> StepReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let total = microBatches.reduce(0) { $0 + $1.counted }
        guard total > 0 else { throw .noTargets(step: step) }
        model.zeroGradients()
        var lossSum = 0.0
        for mb in microBatches {
            let result: (loss: Float, count: Int)?
            do { result = try model.forward(tokens: mb.tokens, targets: mb.targets, batch: mb.batch, seq: seq) } catch { throw .model(error) }
            guard let result else { continue }
            lossSum += Double(result.loss) * Double(result.count)
            model.backward(lossScale: 1 / Float(total))
        }
        let loss = lossSum / Double(total)
        let gradients = model.gradients!
        let norm = GradientTools.globalNorm(UnsafeBufferPointer(gradients))
        let lr = options.schedule.lr(at: step)
        var report = StepReport(step: step, loss: loss, gradNorm: norm, lr: lr, tokens: microBatches.reduce(0) { $0 + $1.tokens.count },
                                skipped: false, seconds: 0)
        if !loss.isFinite || !norm.isFinite {
            if options.nanPolicy == .stop { throw .nonFinite(step: step, loss: loss, gradNorm: norm) }
            report.skipped = true
        } else {
            let updateStart = DispatchTime.now().uptimeNanoseconds
            defer { lastUpdateSeconds = Double(DispatchTime.now().uptimeNanoseconds - updateStart) / 1e9 }
            if options.gradClip > 0 {
                let coefficient = options.gradClip / (norm + 1e-6)
                if coefficient < 1 { GradientTools.scale(gradients, by: Float(coefficient)) }
            }
            optimizer.update(parameters: model.parameters, gradients: UnsafeBufferPointer(gradients), lr: Float(lr))
        }
        step += 1
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return report
    }

    /// Mean loss over batches without updating anything (held-out evaluation).
    public func evaluate(_ microBatches: [MicroBatch], seq: Int) throws(TrainingError) -> Double {
        var sum = 0.0, count = 0
        for mb in microBatches {
            let result: (loss: Float, count: Int)?
            do { result = try model.forward(tokens: mb.tokens, targets: mb.targets, batch: mb.batch, seq: seq) } catch { throw .model(error) }
            if let result { sum += Double(result.loss) * Double(result.count); count += result.count }
        }
        return count > 0 ? sum / Double(count) : .nan
    }
}
