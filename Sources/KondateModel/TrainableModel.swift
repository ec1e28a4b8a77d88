import Foundation

/// What the trainer, the optimizer and checkpoints need from a model — the seam between the training
/// loop and a compute backend. `Transformer` is the CPU implementation. A device backend keeps its
/// tensors on the device and exposes the same layout; its `parameters` and `gradients` are host
/// mirrors, synchronised around the optimizer step and checkpoints, so checkpoints and Hugging Face
/// files stay identical across backends.
public protocol TrainableModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    /// The part of the model this instance holds (`.whole` without model parallelism).
    var shard: ModelShard { get }
    var layout: ParameterLayout { get }
    /// All parameters in `layout` order.
    var parameters: UnsafeMutableBufferPointer<Float> { get }
    /// Gradients in `layout` order, once `zeroGradients` or `backward` has run.
    var gradients: UnsafeMutableBufferPointer<Float>? { get }
    func zeroGradients()
    /// Zeroes `gradients[range]` (allocating the buffer first if needed) and lets the memory of that
    /// range go until it is written again; ZeRO-2 calls it for each layer once reduced.
    func releaseGradients(_ range: Range<Int>)
    /// Mean loss over scored targets and their count; nil without targets (logits only).
    @discardableResult
    func forward(tokens: [Int32], targets: [Int32]?, batch: Int, seq: Int) throws(ModelError) -> (loss: Float, count: Int)?
    /// Accumulates the gradient of lossScale × Σ token losses of the last forward pass.
    func backward(lossScale: Float)
    /// Pipeline stages and micro-batches in flight: `Transformer.forward(tokens:targets:batch:seq:slot:input:)`.
    @discardableResult
    func forward(tokens: [Int32], targets: [Int32]?, batch: Int, seq: Int, slot: Int, input: UnsafePointer<Float>?) throws(ModelError)
        -> (loss: Float, count: Int)?
    func backward(lossScale: Float, slot: Int, outputGradient: UnsafePointer<Float>?)
    func stageOutput(slot: Int) -> UnsafeBufferPointer<Float>
    func inputGradient(slot: Int) -> UnsafeBufferPointer<Float>
    /// Told during `backward` the offset from which gradients are final (see `Transformer.gradientsReady`).
    var gradientsReady: ((Int) -> Void)? { get set }
    /// Set by the trainer before each training forward pass (dropout masks); nil for evaluation.
    var dropoutContext: DropoutContext? { get set }
}

extension TrainableModel {
    /// The named parameter tensor, as a view into `parameters`.
    public func tensor(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let t = layout[name] else { return nil }
        return UnsafeMutableBufferPointer(rebasing: parameters[t.offset..<(t.offset + t.count)])
    }

    /// The named gradient tensor, as a view into `gradients`.
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let t = layout[name], let g = gradients else { return nil }
        return UnsafeMutableBufferPointer(rebasing: g[t.offset..<(t.offset + t.count)])
    }
}

extension Transformer: TrainableModel {
    @discardableResult
    public func forward(tokens: [Int32], targets: [Int32]? = nil, batch: Int, seq: Int) throws(ModelError) -> (loss: Float, count: Int)? {
        try forward(tokens: tokens, targets: targets, batch: batch, seq: seq, slot: 0, input: nil)
    }
    public func backward(lossScale: Float) { backward(lossScale: lossScale, slot: 0, outputGradient: nil) }
}
