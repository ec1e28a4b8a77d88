import KondateSupport

/// Peak throughput and memory of the device types a recipe may name.
///
/// Figures are dense (no sparsity) peaks from the vendors' data sheets: A100 (SXM) 312 TFLOP/s bf16,
/// 19.5 TFLOP/s fp32; H100 SXM 989 TFLOP/s bf16, 67 TFLOP/s fp32; H200 the same compute as H100 with
/// 141 GB HBM3e. `cpu` describes one rank of Kondate's CPU runtime on the reference 2-core machine
/// (OpenBLAS sgemm ≈ 180 GFLOP/s; bf16 is computed in fp32); override it with `cluster.peak_flops`
/// and `cluster.device_memory`.
///
/// Each entry also carries the interconnect of a typical node of that device (`Interconnect`; the
/// sources are noted at the entries); `cluster.intra_node_bandwidth`, `cluster.inter_node_bandwidth`
/// and the two latencies override it.
public struct DeviceSpec: Sendable, Equatable {
    public let name: String
    public let memoryBytes: Int
    public let peakBF16: Double
    public let peakFP32: Double
    public let description: String
    public let interconnect: Interconnect

    /// Peak FLOP/s for a training precision.
    public func peak(precision: String) -> Double {
        precision == "fp32" ? peakFP32 : peakBF16
    }
}

public enum DeviceCatalog {
    static let GiB = 1 << 30

    /// A100 SXM node. Intra: NVLink 3, 12 links × 25 GB/s = 300 GB/s per direction per GPU (NVIDIA's
    /// "600 GB/s" counts both directions). Inter: an mdx-like node, LLM-jp's pretraining cluster, with
    /// 4 × InfiniBand HDR 200 Gb/s = 100 GB/s per direction per node (mdx's public system page lists the
    /// 8 × A100-40GB nodes but not their network; a DGX A100 has 8 × HDR = 200 GB/s: set
    /// `inter_node_bandwidth: 8x200Gb/s`). Latencies per message: NCCL's tuning model
    /// (src/graph/tuning.cc, ring, Simple protocol) uses 3.4 µs over NVLink and 9.6 µs over the network.
    static let a100Node = Interconnect(intraNodeBandwidth: 300e9, interNodeBandwidth: 100e9, intraNodeLatency: 3.4e-6, interNodeLatency: 9.6e-6,
                                       description: "NVLink 3 (300 GB/s per direction), 4 × InfiniBand HDR 200 Gb/s per node (mdx-like)")
    /// H100/H200 SXM node (DGX/HGX H100 and H200). Intra: NVLink 4, 18 links × 25 GB/s = 450 GB/s per
    /// direction ("900 GB/s" bidirectional). Inter: 8 × ConnectX-7 InfiniBand NDR 400 Gb/s = 400 GB/s per
    /// node (NVIDIA DGX H100/H200 specifications). Latencies as for A100 (NCCL's tuning model).
    static let hopperNode = Interconnect(intraNodeBandwidth: 450e9, interNodeBandwidth: 400e9, intraNodeLatency: 3.4e-6, interNodeLatency: 9.6e-6,
                                         description: "NVLink 4 (450 GB/s per direction), 8 × InfiniBand NDR 400 Gb/s per node (DGX H100/H200)")
    /// CPU ranks: modest defaults for commodity machines. Intra: ranks exchange data through shared
    /// memory, about 10 GB/s for a copy on a desktop-class memory system; inter: 10 Gb/s Ethernet.
    /// Latencies: about 1 µs for an MPI message through shared memory, 50 µs for TCP over Ethernet.
    static let cpuNode = Interconnect(intraNodeBandwidth: 10e9, interNodeBandwidth: 1.25e9, intraNodeLatency: 1e-6, interNodeLatency: 50e-6,
                                      description: "shared memory (10 GB/s), 10 Gb/s Ethernet per node")

    public static let all: [DeviceSpec] = [
        DeviceSpec(name: "a100-40gb", memoryBytes: 40 * GiB, peakBF16: 312e12, peakFP32: 19.5e12, description: "NVIDIA A100 SXM 40GB", interconnect: a100Node),
        DeviceSpec(name: "a100-80gb", memoryBytes: 80 * GiB, peakBF16: 312e12, peakFP32: 19.5e12, description: "NVIDIA A100 SXM 80GB", interconnect: a100Node),
        DeviceSpec(name: "h100-80gb", memoryBytes: 80 * GiB, peakBF16: 989e12, peakFP32: 67e12, description: "NVIDIA H100 SXM 80GB", interconnect: hopperNode),
        DeviceSpec(name: "h200-141gb", memoryBytes: 141_000_000_000, peakBF16: 989e12, peakFP32: 67e12, description: "NVIDIA H200 SXM 141GB", interconnect: hopperNode),
        DeviceSpec(name: "cpu", memoryBytes: 16 * GiB, peakBF16: 180e9, peakFP32: 180e9, description: "one CPU rank (OpenBLAS, fp32)", interconnect: cpuNode),
    ]

    public static func spec(_ name: String) -> DeviceSpec? { all.first { $0.name == name } }
}

/// How the devices of a cluster are wired, per direction (what a device or node sends while it also
/// receives the same amount): the figures the plan's communication cost model divides by.
public struct Interconnect: Sendable, Equatable {
    /// Bytes/s one device sends to another device of its node (NVLink through NVSwitch; shared memory for `cpu`).
    public var intraNodeBandwidth: Double
    /// Bytes/s one node sends to the network, all its network adapters together.
    public var interNodeBandwidth: Double
    /// Seconds per message inside a node: one step of a ring collective or one point-to-point transfer.
    public var intraNodeLatency: Double
    /// Seconds per message between nodes.
    public var interNodeLatency: Double
    /// The hardware the catalog figures describe, e.g. "NVLink 3 (300 GB/s per direction), …".
    public var description: String
    /// The `cluster` keys that replaced catalog figures, e.g. ["inter_node_bandwidth"].
    public var overrides: [String] = []

    public init(intraNodeBandwidth: Double, interNodeBandwidth: Double, intraNodeLatency: Double, interNodeLatency: Double, description: String) {
        self.intraNodeBandwidth = intraNodeBandwidth
        self.interNodeBandwidth = interNodeBandwidth
        self.intraNodeLatency = intraNodeLatency
        self.interNodeLatency = interNodeLatency
        self.description = description
    }

    /// The recipe keys, in the order `resolve` reads them.
    public static let bandwidthKeys = ["cluster.intra_node_bandwidth", "cluster.inter_node_bandwidth"]

    /// The cluster's interconnect: the device's catalog figures with the recipe's `cluster` overrides
    /// applied. A bandwidth that does not parse (or is not positive) keeps the catalog figure and is
    /// reported in `diagnostics` at its file:line:col, so `kondate validate` and `kondate plan` fail on it.
    public static func resolve(_ tree: RNode, diagnostics: inout DiagnosticSet) -> Interconnect {
        let device = tree.at("cluster.device")?.string ?? "cpu"
        var link = DeviceCatalog.spec(device)?.interconnect ?? DeviceCatalog.cpuNode
        var overridden: [String] = []
        for key in bandwidthKeys {
            guard let node = tree.at(key), let text = node.string ?? node.double.map({ Format.number($0) }) else { continue }
            let fix = "write the rate with its unit, e.g. `300GB/s` (bytes per second) or `200Gb/s` / `4x200Gb/s` (bits per second)"
            switch Units.bandwidth(text) {
            case let .success(value) where value > 0:
                if key == "cluster.intra_node_bandwidth" { link.intraNodeBandwidth = value } else { link.interNodeBandwidth = value }
                overridden.append(key.replacingOccurrences(of: "cluster.", with: ""))
            case .success:
                diagnostics.error(.outOfRange, "'\(key)' must be a positive bandwidth, found '\(text)'; \(fix)", at: node.location, notes: node.provenance.notes)
            case .failure(.unknownSuffix("")):
                diagnostics.error(.typeMismatch, "'\(key)' needs a unit, found '\(text)': bytes and bits per second differ by 8; \(fix)",
                                  at: node.location, notes: node.provenance.notes)
            case let .failure(.unknownSuffix(suffix)):
                // "GBs" → "GB/s"; a wrong case gets the bytes/bits reminder.
                let slashed = suffix.hasSuffix("s") && !suffix.hasSuffix("/s") ? String(suffix.dropLast()) + "/s" : suffix
                let hint = slashed != suffix && Units.bandwidthSuffixes[slashed] != nil ? " (did you mean '\(slashed)'?)"
                    : ["gb/s", "gbps", "mb/s", "tb/s"].contains(suffix.lowercased()) ? " (`GB/s` is bytes, `Gb/s` bits)" : ""
                diagnostics.error(.typeMismatch, "unknown bandwidth unit '\(suffix)' in '\(text)' for '\(key)'\(hint); units: \(Units.bandwidthSuffixList)",
                                  at: node.location, notes: node.provenance.notes)
            case .failure(.tooLarge):
                diagnostics.error(.outOfRange, "'\(key)' is too large: \(text)", at: node.location, notes: node.provenance.notes)
            case .failure:
                diagnostics.error(.typeMismatch, "'\(key)' expects a bandwidth, found '\(text)'; \(fix)", at: node.location, notes: node.provenance.notes)
            }
        }
        if let s = tree.at("cluster.intra_node_latency")?.double { link.intraNodeLatency = s; overridden.append("intra_node_latency") }
        if let s = tree.at("cluster.inter_node_latency")?.double { link.interNodeLatency = s; overridden.append("inter_node_latency") }
        link.overrides = overridden
        return link
    }
}

extension DeviceCatalog {
    /// One interconnect figure for every catalog device, devices with the same figure together:
    /// "a100-40gb, a100-80gb 300 GB/s; h100-80gb, h200-141gb 450 GB/s; cpu 10 GB/s" (for the reference).
    static func interconnectDefaults(_ figure: KeyPath<Interconnect, Double>, _ format: (Double) -> String) -> String {
        var groups: [(value: Double, names: [String])] = []
        for d in all {
            let v = d.interconnect[keyPath: figure]
            if let i = groups.firstIndex(where: { $0.value == v }) { groups[i].names.append(d.name) } else { groups.append((v, [d.name])) }
        }
        return groups.map { $0.names.joined(separator: ", ") + " " + format($0.value) }.joined(separator: "; ")
    }

    static func bandwidthDefaults(_ figure: KeyPath<Interconnect, Double>) -> String {
        interconnectDefaults(figure) { Format.si($0, "B/s") }
    }

    static func latencyDefaults(_ figure: KeyPath<Interconnect, Double>) -> String {
        interconnectDefaults(figure) { Format.number(($0 * 1e7).rounded() / 10) + " µs" }
    }
}
