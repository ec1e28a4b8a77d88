import Foundation

public enum ReduceOperation: Sendable { case sum, max }

/// What distributed training needs from a group of processes: the seam between the model and trainer
/// and a transport (`KondateMPI.MPIGroup` over OpenMPI). Every collective must be called by every rank
/// of the group, in the same order.
///
/// The methods do not throw: a collective that fails leaves the other ranks of the job waiting, so an
/// implementation reports the failure (naming the rank and the operation) and ends the whole job.
public protocol ProcessGroup: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// In place: every rank ends with the element-wise reduction over the group.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOperation)
    /// The sum of one number over the group.
    func allReduce(_ value: Double) -> Double
    /// `buffer` is cut into consecutive blocks of `counts[r]` elements; rank r's block ends holding the
    /// sum of everyone's block r (the other blocks are left unspecified).
    func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int])
    /// `buffer` is cut as in `reduceScatter`; every rank ends with every rank's own block.
    func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int])
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int)
    /// Starts sending `values` to `destination`; the send completes by `finishSends`.
    func send(_ values: [Float], to destination: Int, tag: Int)
    /// Waits until every started send has been delivered.
    func finishSends()
    func receive(_ buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int)
    /// Starts an in-place sum over the group of `buffer`, which must stay valid and untouched until
    /// `finishReductions`; `progress` lets started reductions advance while the caller computes.
    func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>)
    func progress()
    func finishReductions()
}

/// The groups one rank of a tensor × pipeline × data layout belongs to (Megatron's rank order), and how
/// data parallelism reduces gradients.
public struct ParallelGroups: Sendable {
    public var world: any ProcessGroup
    public var tensor: any ProcessGroup
    public var pipeline: any ProcessGroup
    public var data: any ProcessGroup
    /// The ZeRO stage over the data group: 0 none; 1 optimizer state sharded (Megatron's distributed
    /// optimizer); 2 gradients sharded too, each layer's reduce-scattered during the backward pass.
    public var zeroStage: Int
    /// Optimizer state sharded (ZeRO stage 1 or 2).
    public var zero: Bool { zeroStage >= 1 }
    /// Gradient elements per data-parallel all-reduce bucket (started during the backward pass).
    public var bucketElements: Int

    public init(world: any ProcessGroup, tensor: any ProcessGroup, pipeline: any ProcessGroup, data: any ProcessGroup,
                zeroStage: Int, bucketElements: Int = 1 << 22) {
        precondition((0...2).contains(zeroStage), "ZeRO stage \(zeroStage) is not implemented")
        self.world = world
        self.tensor = tensor
        self.pipeline = pipeline
        self.data = data
        self.zeroStage = zeroStage
        self.bucketElements = bucketElements
    }

    /// Consecutive, nearly equal blocks of `count` elements, one per data-parallel rank (the ZeRO
    /// shards; earlier ranks take one more element when `count` does not divide).
    public static func blocks(_ count: Int, parts: Int) -> [Int] {
        (0..<parts).map { count / parts + ($0 < count % parts ? 1 : 0) }
    }
}
