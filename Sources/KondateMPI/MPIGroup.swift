import CMPI
import Foundation
import KondateCollectives

/// A `ProcessGroup` over an MPI communicator: what the model and the trainer use for distributed
/// training. A failed MPI call cannot be recovered while other ranks wait in the same collective, so it
/// prints the rank and the error and aborts the whole job (`MPI_Abort`), which mpirun turns into the
/// end of every rank.
public final class MPIGroup: ProcessGroup, @unchecked Sendable {
    public let communicator: Communicator
    /// The world rank, for messages.
    let worldRank: Int
    private var pendingSends: [(request: MPI_Request?, buffer: UnsafeMutableBufferPointer<Float>)] = []
    private var pendingReductions: [MPI_Request?] = []

    public init(_ communicator: Communicator, worldRank: Int) {
        self.communicator = communicator
        self.worldRank = worldRank
    }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Runs `body`; an MPI error ends the job.
    @inline(__always)
    private func must(_ body: () throws(MPIError) -> Void, _ what: @autoclosure () -> String = "an MPI collective") {
        CollectiveWatchdog.shared.enter(what())
        defer { CollectiveWatchdog.shared.leave() }
        do { try body() } catch { fail(error.description) }
    }

    private func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("kondate: rank \(worldRank): \(message); ending the job\n".utf8))
        MPI_Abort(kondate_mpi_comm_world(), 1)
        exit(1)
    }

    /// Runs an MPI call (under the watchdog's deadline); an error ends the job.
    private func checked(_ call: @autoclosure () -> Int32, _ operation: @autoclosure () -> String) {
        CollectiveWatchdog.shared.enter(operation())
        let code = call()
        CollectiveWatchdog.shared.leave()
        if code != kondate_mpi_success() { fail(MPIError(operation(), code).description) }
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOperation) {
        must({ () throws(MPIError) in try communicator.allReduce(buffer, op == .sum ? .sum : .max) }, "an all-reduce of \(buffer.count) floats")
    }

    public func allReduce(_ value: Double) -> Double {
        var result = 0.0
        must({ () throws(MPIError) in result = try communicator.allReduce(value, .sum) }, "an all-reduce of one number")
        return result
    }

    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        precondition(counts.count == size && counts.reduce(0, +) == buffer.count, "reduceScatter: counts must cover the buffer")
        guard size > 1 else { return }
        let start = counts[..<rank].reduce(0, +)
        if counts.contains(where: { $0 > Communicator.maxChunk }) {
            // Beyond MPI's int counts: an all-reduce in chunks leaves every block summed.
            allReduce(buffer, .sum)
            return
        }
        // One element more than received, so the receive buffer has an address when this rank's block is empty.
        var receive = [Float](repeating: 0, count: counts[rank] + 1)
        let counts32 = counts.map { Int32($0) }
        receive.withUnsafeMutableBufferPointer { r in
            checked(MPI_Reduce_scatter(buffer.baseAddress!, r.baseAddress, counts32, kondate_mpi_float(), kondate_mpi_sum(), communicator.comm),
                    "MPI_Reduce_scatter of \(buffer.count) floats")
            (buffer.baseAddress! + start).update(from: r.baseAddress!, count: counts[rank])
        }
    }

    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        precondition(counts.count == size && counts.reduce(0, +) == buffer.count, "allGather: counts must cover the buffer")
        guard size > 1 else { return }
        var offsets = [Int](repeating: 0, count: size)
        for r in 1..<size { offsets[r] = offsets[r - 1] + counts[r - 1] }
        if buffer.count > Communicator.maxChunk {
            for r in 0..<size where counts[r] > 0 {
                broadcast(UnsafeMutableBufferPointer(rebasing: buffer[offsets[r]..<(offsets[r] + counts[r])]), root: r)
            }
            return
        }
        checked(MPI_Allgatherv(kondate_mpi_in_place(), 0, kondate_mpi_float(), buffer.baseAddress!, counts.map { Int32($0) },
                               offsets.map { Int32($0) }, kondate_mpi_float(), communicator.comm),
                "MPI_Allgatherv of \(buffer.count) floats")
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) {
        must({ () throws(MPIError) in try communicator.broadcast(buffer, root: root) }, "a broadcast from rank \(root)")
    }

    public func send(_ values: [Float], to destination: Int, tag: Int) {
        precondition(values.count <= Communicator.maxChunk, "a point-to-point message is limited to Int32.max floats")
        // The buffer must outlive the send: it is released by finishSends.
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
        _ = buffer.initialize(from: values)
        var request: MPI_Request?
        checked(MPI_Isend(buffer.baseAddress, Int32(values.count), kondate_mpi_float(), Int32(destination), Int32(tag), communicator.comm, &request),
                "MPI_Isend of \(values.count) floats to rank \(destination)")
        pendingSends.append((request, buffer))
    }

    public func finishSends() {
        for var pending in pendingSends {
            checked(MPI_Wait(&pending.request, kondate_mpi_status_ignore()), "MPI_Wait for a send")
            pending.buffer.deallocate()
        }
        pendingSends.removeAll()
    }

    public func receive(_ buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) {
        must({ () throws(MPIError) in try communicator.receive(buffer, from: source, tag: tag) }, "a receive from rank \(source) of its group")
    }

    public func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, buffer.count > 0 else { return }
        if buffer.count > Communicator.maxChunk {
            allReduce(buffer, .sum)
            return
        }
        var request: MPI_Request?
        checked(MPI_Iallreduce(kondate_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), kondate_mpi_float(), kondate_mpi_sum(),
                               communicator.comm, &request), "MPI_Iallreduce of \(buffer.count) floats")
        pendingReductions.append(request)
    }

    public func progress() {
        for i in pendingReductions.indices {
            var flag: Int32 = 0
            checked(MPI_Test(&pendingReductions[i], &flag, kondate_mpi_status_ignore()), "MPI_Test")
        }
    }

    public func finishReductions() {
        for i in pendingReductions.indices {
            checked(MPI_Wait(&pendingReductions[i], kondate_mpi_status_ignore()), "MPI_Wait for an all-reduce")
        }
        pendingReductions.removeAll()
    }
}

extension ParallelGroups {
    /// The groups of `world`'s rank in `layout` (Megatron's rank order).
    public static func mpi(world: Communicator, layout: ParallelLayout, zeroStage: Int, bucketElements: Int = 1 << 22) throws -> ParallelGroups {
        let g = try world.groups(layout)
        let r = world.rank
        return ParallelGroups(world: MPIGroup(world, worldRank: r), tensor: MPIGroup(g.tensor, worldRank: r),
                              pipeline: MPIGroup(g.pipeline, worldRank: r), data: MPIGroup(g.data, worldRank: r),
                              zeroStage: zeroStage, bucketElements: bucketElements)
    }
}
