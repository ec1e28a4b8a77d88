import KondateCollectives
import KondateKernels
import KondateModel
import KondatePlan
import KondateRecipe

/// The one place the runtime makes models: pretraining, tuning, evaluation, `score` and `generate`
/// ask their `ComputeBackend` for a model instead of constructing one. A device backend (CUDA) is a
/// case of `ComputeBackend` and a branch here; nothing else changes.
extension ComputeBackend {
    var matmulPrecision: MatmulPrecision {
        switch self {
        case .cpuFP32: .fp32
        case .cpuBF16: .bf16
        }
    }

    /// A model of `config` with zeroed parameters (one shard of it under model parallelism).
    ///
    /// `recompute` is `parallel.recompute`: `full` keeps only each layer's input and recomputes the
    /// layer before its backward; `selective` (recompute the attention core) is what the blocked
    /// attention kernel always does, since it never stores the (T, T) scores; `none` stores everything.
    public func makeModel(config: ModelConfig, shard: ModelShard = .whole, tensorGroup: (any ProcessGroup)? = nil,
                          recompute: Recompute = .none, dropout: DropoutRates = .none) throws(ModelError) -> Transformer {
        switch self {
        case .cpuFP32, .cpuBF16:
            try Transformer(config: config, shard: shard, tensorGroup: tensorGroup, matmulPrecision: matmulPrecision,
                            recomputeLayers: recompute == .full, dropout: dropout)
        }
    }

    /// The model of a Hugging Face directory (written by transformers or by Kondate); `recompute` as in `makeModel`.
    public func loadModel(directory: String, recompute: Recompute = .none) throws -> Transformer {
        switch self {
        case .cpuFP32, .cpuBF16: try HFModel.load(directory: directory, matmulPrecision: matmulPrecision, recomputeLayers: recompute == .full)
        }
    }

    /// What computes the matrix products on this machine, for the run log and the manifest.
    public var execution: String {
        switch self {
        case .cpuFP32:
            "f32 on OpenBLAS sgemm (\(BLAS.coreName) kernels)"
        case .cpuBF16:
            switch Kernels.bf16Route {
            case .oneDNN: "bf16 on oneDNN \(OneDNN.version) matmul (\(OneDNN.isa)), f32 accumulation and master weights"
            case .roundedSGEMM: "bf16-rounded operands on OpenBLAS sgemm, f32 accumulation and master weights"
            }
        }
    }

    /// Set when the backend runs on a slower substitute on this machine: what it falls back to and why.
    public var fallback: String? {
        switch self {
        case .cpuFP32: nil
        case .cpuBF16:
            Kernels.bf16Route == .oneDNN ? nil
                : "this CPU has no bf16 instructions (oneDNN dispatches to \(OneDNN.isa)); bf16 matmuls run as bf16-rounded operands on OpenBLAS sgemm, with the same rounding and f32 accumulation but no speed-up"
        }
    }
}
