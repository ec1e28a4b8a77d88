import Foundation
import KondateCollectives
import KondateKernels
import KondateModel

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

public struct TrainingOptions: Sendable, Equatable {
    public enum NaNPolicy: String, Sendable, Codable { case skip, stop }
    public var schedule: LearningRateSchedule
    public var adamw: AdamW.Hyperparameters
    /// Clip the global gradient norm to this value (0: no clipping), as `clip_grad_norm_`.
    public var gradClip: Double
    public var nanPolicy: NaNPolicy

    /// The seed of the dropout masks (`DropoutContext`); unused by a model without dropout.
    public var dropoutSeed: UInt64 = 0

    public init(schedule: LearningRateSchedule, adamw: AdamW.Hyperparameters, gradClip: Double = 1.0, nanPolicy: NaNPolicy = .stop,
                dropoutSeed: UInt64 = 0) {
        self.dropoutSeed = dropoutSeed
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
    case layout(String)

    public var description: String {
        switch self {
        case let .nonFinite(step, loss, gradNorm):
            "step \(step): the loss (\(loss)) or the gradient norm (\(gradNorm)) is not finite; lower the learning rate, " +
                "check the data, or set pretrain.nan_policy: skip to skip such steps"
        case let .noTargets(step): "step \(step): the batch has no scored tokens (every target is -100)"
        case let .model(e): e.description
        case let .layout(message): message
        }
    }
}

/// The training loop's step: gradient accumulation over micro-batches (the loss is the mean over all
/// scored tokens of the global batch, as one big batch would give), global-norm clipping, the NaN
/// policy, the learning-rate schedule and AdamW.
///
/// With `groups` the step is distributed (see `Trainer+Distributed.swift`): every rank is given the
/// same global batch and works on its data-parallel share, through its pipeline stage and tensor slice.
public final class Trainer: @unchecked Sendable {
    public let model: any TrainableModel
    public let optimizer: AdamW
    public let options: TrainingOptions
    /// The process groups of distributed training (nil: one process).
    public let groups: ParallelGroups?
    /// Steps taken (including skipped ones); the next step's index.
    public var step = 0
    /// Wall time of the last step's clipping and optimizer update.
    public internal(set) var lastUpdateSeconds = 0.0
    /// Wall time of the last step spent in data-parallel reductions, parameter gathers and waiting for
    /// pipeline messages (tensor-parallel reductions are in the model's profile, `communication`).
    public internal(set) var lastCommunicationSeconds = 0.0
    /// Nanoseconds the last pipeline schedule waited for messages.
    var pipelineWait: UInt64 = 0
    /// ZeRO-2: this rank's reduced gradients for the optimizer's range (index 0 is the element at
    /// `optimizer.range.lowerBound`).
    let shardGradients: UnsafeMutableBufferPointer<Float>?

    public init(model: any TrainableModel, options: TrainingOptions, groups: ParallelGroups? = nil) {
        self.model = model
        self.options = options
        self.groups = groups
        var range: Range<Int>?
        if let groups, groups.zero {
            let blocks = ParallelGroups.blocks(model.layout.count, parts: groups.data.size)
            let start = blocks[..<groups.data.rank].reduce(0, +)
            range = start..<(start + blocks[groups.data.rank])
        }
        optimizer = AdamW(layout: model.layout, hyper: options.adamw, range: range)
        if let groups, groups.zeroStage >= 2, groups.data.size > 1 {
            shardGradients = .allocate(capacity: optimizer.range.count)
            shardGradients!.initialize(repeating: 0)
        } else {
            shardGradients = nil
        }
    }

    deinit { shardGradients?.deallocate() }

    public func step(_ microBatches: [MicroBatch], seq: Int) throws(TrainingError) -> StepReport {
        if let groups { return try distributedStep(microBatches, seq: seq, groups: groups) }
        let start = DispatchTime.now().uptimeNanoseconds
        let total = microBatches.reduce(0) { $0 + $1.counted }
        guard total > 0 else { throw .noTargets(step: step) }
        model.zeroGradients()
        defer { model.dropoutContext = nil }
        var lossSum = 0.0
        var firstRow = 0
        for mb in microBatches {
            model.dropoutContext = DropoutContext(seed: options.dropoutSeed, step: step, firstRow: firstRow)
            firstRow += mb.batch
            let result: (loss: Float, count: Int)?
            do { result = try model.forward(tokens: mb.tokens, targets: mb.targets, batch: mb.batch, seq: seq) } catch { throw .model(error) }
            guard let result else { continue }
            lossSum += Double(result.loss) * Double(result.count)
            model.backward(lossScale: 1 / Float(total))
        }
        let loss = lossSum / Double(total)
        let gradients = model.gradients!
        let norm = GradientTools.globalNorm(UnsafeBufferPointer(gradients))
        var report = try update(loss: loss, norm: norm, tokens: microBatches.reduce(0) { $0 + $1.tokens.count },
                                gradients: gradients.baseAddress!)
        step += 1
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return report
    }

    /// The NaN policy, clipping to the global norm and the AdamW update of the optimizer's range, from
    /// the step's mean loss and global gradient norm. The report is marked skipped when the policy
    /// skipped the update. `gradients` is indexed by layout offsets and valid over the optimizer's range.
    func update(loss: Double, norm: Double, tokens: Int, gradients: UnsafeMutablePointer<Float>) throws(TrainingError) -> StepReport {
        let lr = options.schedule.lr(at: step)
        var report = StepReport(step: step, loss: loss, gradNorm: norm, lr: lr, tokens: tokens, skipped: false, seconds: 0)
        if !loss.isFinite || !norm.isFinite {
            if options.nanPolicy == .stop { throw .nonFinite(step: step, loss: loss, gradNorm: norm) }
            report.skipped = true
            return report
        }
        let updateStart = DispatchTime.now().uptimeNanoseconds
        defer { lastUpdateSeconds = Double(DispatchTime.now().uptimeNanoseconds - updateStart) / 1e9 }
        let range = optimizer.range
        if options.gradClip > 0 {
            let coefficient = options.gradClip / (norm + 1e-6)
            // Only the part the optimizer reads (a ZeRO-1 shard holds the others' unreduced values).
            if coefficient < 1 { GradientTools.scale(UnsafeMutableBufferPointer(start: gradients + range.lowerBound, count: range.count), by: Float(coefficient)) }
        }
        optimizer.update(parameters: model.parameters, gradients: gradients, lr: Float(lr))
        return report
    }

    /// Mean loss over batches without updating anything (held-out evaluation).
    public func evaluate(_ microBatches: [MicroBatch], seq: Int) throws(TrainingError) -> Double {
        if let groups { return try distributedEvaluate(microBatches, seq: seq, groups: groups) }
        var sum = 0.0, count = 0
        for mb in microBatches {
            let result: (loss: Float, count: Int)?
            do { result = try model.forward(tokens: mb.tokens, targets: mb.targets, batch: mb.batch, seq: seq) } catch { throw .model(error) }
            if let result { sum += Double(result.loss) * Double(result.count); count += result.count }
        }
        return count > 0 ? sum / Double(count) : .nan
    }
}
