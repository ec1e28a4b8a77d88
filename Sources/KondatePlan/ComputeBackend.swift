import KondateRecipe

/// What computes a training or inference stage's model on Kondate's runtime, decided by the plan from
/// the stage's precision. The runtime makes every model through `ComputeBackend` (KondateRuntime's
/// `ModelFactory`), so a device backend (CUDA) is one more case and one more branch there.
///
/// - `cpu-fp32`: f32 everywhere, matrix products on OpenBLAS `sgemm`.
/// - `cpu-bf16`: mixed precision as Megatron-LM's bf16: f32 master weights, gradients and AdamW state;
///   the linear layers' matrix products take bf16 operands and accumulate in f32 (oneDNN's matmul on
///   CPUs with bf16 instructions); norms, softmax, RoPE, attention scores and the loss in f32.
public enum ComputeBackend: String, Sendable, CaseIterable {
    case cpuFP32 = "cpu-fp32"
    case cpuBF16 = "cpu-bf16"

    /// The backend of a stage that computes at `precision` on the CPU runtime; nil for fp16, which
    /// validation refuses for the Kondate engine.
    public init?(precision: Precision) {
        switch precision {
        case .fp32: self = .cpuFP32
        case .bf16: self = .cpuBF16
        case .fp16: return nil
        }
    }
}

extension PretrainConfig {
    /// The backend that trains this stage.
    public func backend() throws -> ComputeBackend {
        guard let b = ComputeBackend(precision: pretrain.precision) else {
            throw KondateError.bug("pretrain: precision \(pretrain.precision.rawValue) reached the CPU runtime; validation refuses it")
        }
        return b
    }
}

extension TuneConfig {
    /// The backend that trains this stage.
    public func backend() throws -> ComputeBackend {
        guard let b = ComputeBackend(precision: stage.precision) else {
            throw KondateError.bug("tune.\(stage.name): precision \(stage.precision.rawValue) reached the CPU runtime; validation refuses it")
        }
        return b
    }
}
