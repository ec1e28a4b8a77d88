/// Peak throughput and memory of the device types a recipe may name.
///
/// Figures are dense (no sparsity) peaks from the vendors' data sheets: A100 (SXM) 312 TFLOP/s bf16,
/// 19.5 TFLOP/s fp32; H100 SXM 989 TFLOP/s bf16, 67 TFLOP/s fp32; H200 the same compute as H100 with
/// 141 GB HBM3e. `cpu` describes one rank of Kondate's CPU runtime on the reference 2-core machine
/// (OpenBLAS sgemm ≈ 180 GFLOP/s; bf16 is computed in fp32); override it with `cluster.peak_flops`
/// and `cluster.device_memory`.
public struct DeviceSpec: Sendable, Equatable {
    public let name: String
    public let memoryBytes: Int
    public let peakBF16: Double
    public let peakFP32: Double
    public let description: String

    /// Peak FLOP/s for a training precision.
    public func peak(precision: String) -> Double {
        precision == "fp32" ? peakFP32 : peakBF16
    }
}

public enum DeviceCatalog {
    static let GiB = 1 << 30

    public static let all: [DeviceSpec] = [
        DeviceSpec(name: "a100-40gb", memoryBytes: 40 * GiB, peakBF16: 312e12, peakFP32: 19.5e12, description: "NVIDIA A100 SXM 40GB"),
        DeviceSpec(name: "a100-80gb", memoryBytes: 80 * GiB, peakBF16: 312e12, peakFP32: 19.5e12, description: "NVIDIA A100 SXM 80GB"),
        DeviceSpec(name: "h100-80gb", memoryBytes: 80 * GiB, peakBF16: 989e12, peakFP32: 67e12, description: "NVIDIA H100 SXM 80GB"),
        DeviceSpec(name: "h200-141gb", memoryBytes: 141_000_000_000, peakBF16: 989e12, peakFP32: 67e12, description: "NVIDIA H200 SXM 141GB"),
        DeviceSpec(name: "cpu", memoryBytes: 16 * GiB, peakBF16: 180e9, peakFP32: 180e9, description: "one CPU rank (OpenBLAS, fp32)"),
    ]

    public static func spec(_ name: String) -> DeviceSpec? { all.first { $0.name == name } }
}
