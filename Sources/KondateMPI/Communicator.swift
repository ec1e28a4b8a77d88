import CMPI
import Foundation

/// An MPI call that failed: the operation, MPI's error code and its message.
public struct MPIError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int32
    public var message: String
    public var description: String { "\(operation) failed (MPI error \(code)): \(message)" }

    init(_ operation: String, _ code: Int32) {
        self.operation = operation
        self.code = code
        var buffer = [CChar](repeating: 0, count: Int(kondate_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Throws `MPIError` unless `code` is `MPI_SUCCESS`.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(MPIError) {
    if code != kondate_mpi_success() { throw MPIError(operation(), code) }
}

/// A group of processes that talk through MPI: the world, or a sub-group made by `split`.
///
/// Errors are returned, not fatal (`MPI_ERRORS_RETURN` on every communicator), and become `MPIError`.
/// Buffers of more than `Int32.max` elements are sent in chunks, since classic MPI counts are `int`.
/// Collectives must be called by every rank of the communicator, in the same order.
public final class Communicator: @unchecked Sendable {
    let comm: MPI_Comm
    public let rank: Int
    public let size: Int

    /// Most elements one MPI call carries.
    public static let maxChunk = Int(Int32.max)

    init(_ comm: MPI_Comm) throws(MPIError) {
        self.comm = comm
        try check(MPI_Comm_set_errhandler(comm, kondate_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
    }

    /// Whether this process was started by an MPI launcher (OpenMPI's mpirun, or PMI/PMIx under srun).
    public static var launchedByLauncher: Bool {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    /// Whether MPI has been initialised in this process.
    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    /// Initialises MPI (threads: only the main thread calls MPI) and returns the world.
    public static func world() throws(MPIError) -> Communicator {
        if !isInitialized {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, kondate_mpi_thread_funneled(), &provided), "MPI_Init_thread")
        }
        return try Communicator(kondate_mpi_comm_world())
    }

    /// Ends MPI; call once, after the last collective, on every rank.
    /// The MPI library's own description (`MPI_Get_library_version`), first line: e.g. "Open MPI v4.1.4, …".
    public static func libraryVersion() -> String {
        var buffer = [CChar](repeating: 0, count: Int(kondate_mpi_max_library_version_string()) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == kondate_mpi_success() else { return "unknown" }
        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? text
    }

    public static func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if isInitialized && finalized == 0 { MPI_Finalize() }
    }

    /// Ranks with the same `color` form a new communicator, ordered by `key` (then by rank here).
    public func split(color: Int, key: Int) throws(MPIError) -> Communicator {
        var out: MPI_Comm? = kondate_mpi_comm_null()
        try check(MPI_Comm_split(comm, Int32(color), Int32(key), &out), "MPI_Comm_split")
        guard let out else { throw MPIError("MPI_Comm_split returned no communicator") }
        return try Communicator(out)
    }

    public func barrier() throws(MPIError) { try check(MPI_Barrier(comm), "MPI_Barrier") }

    /// Aborts every rank of the communicator (a rank that cannot go on must not leave others waiting).
    public func abort(code: Int32 = 1) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    // MARK: Collectives on Float buffers

    public enum Operation: Sendable { case sum, max, min
        var handle: MPI_Op {
            switch self {
            case .sum: kondate_mpi_sum()
            case .max: kondate_mpi_max()
            case .min: kondate_mpi_min()
            }
        }
    }

    /// In place: every rank ends with the element-wise reduction of all ranks' buffers.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: Operation = .sum) throws(MPIError) {
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.maxChunk, buffer.count - offset)
            try check(MPI_Allreduce(kondate_mpi_in_place(), buffer.baseAddress! + offset, Int32(n), kondate_mpi_float(), op.handle, comm),
                      "MPI_Allreduce of \(n) floats")
            offset += n
        }
    }

    /// The reduction of one number over all ranks.
    public func allReduce(_ value: Double, _ op: Operation = .sum) throws(MPIError) -> Double {
        var x = value
        try check(MPI_Allreduce(kondate_mpi_in_place(), &x, 1, kondate_mpi_double(), op.handle, comm), "MPI_Allreduce of a double")
        return x
    }

    /// `send` holds `size` blocks of `receive.count` elements; rank r receives the sum over ranks of block r.
    public func reduceScatter(_ send: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>) throws(MPIError) {
        precondition(send.count == receive.count * size, "reduceScatter: send must hold size × receive.count elements")
        var offset = 0
        // Chunk the block: block r's chunk k sits at r × block + offset in `send`.
        var scratch = [Float]()
        while offset < receive.count {
            let n = min(Self.maxChunk / max(1, size), receive.count - offset)
            if n == receive.count {
                try check(MPI_Reduce_scatter_block(send.baseAddress!, receive.baseAddress!, Int32(n), kondate_mpi_float(), kondate_mpi_sum(), comm),
                          "MPI_Reduce_scatter_block of \(n) floats per rank")
            } else {
                scratch = [Float](repeating: 0, count: n * size)
                for r in 0..<size { for i in 0..<n { scratch[r * n + i] = send[r * receive.count + offset + i] } }
                try check(MPI_Reduce_scatter_block(scratch, receive.baseAddress! + offset, Int32(n), kondate_mpi_float(), kondate_mpi_sum(), comm),
                          "MPI_Reduce_scatter_block of \(n) floats per rank")
            }
            offset += n
        }
    }

    /// In place: `buffer` holds `size` blocks; each rank contributes its own block r and ends with all.
    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>) throws(MPIError) {
        precondition(buffer.count % size == 0, "allGather: the buffer must hold size equal blocks")
        let block = buffer.count / size
        if block <= Self.maxChunk {
            try check(MPI_Allgather(kondate_mpi_in_place(), 0, kondate_mpi_float(), buffer.baseAddress!, Int32(block), kondate_mpi_float(), comm),
                      "MPI_Allgather of \(block) floats per rank")
            return
        }
        // Larger blocks: every rank broadcasts its block in turn.
        for r in 0..<size {
            try broadcast(UnsafeMutableBufferPointer(rebasing: buffer[(r * block)..<((r + 1) * block)]), root: r)
        }
    }

    /// `root`'s buffer is copied to every rank.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws(MPIError) {
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.maxChunk, buffer.count - offset)
            try check(MPI_Bcast(buffer.baseAddress! + offset, Int32(n), kondate_mpi_float(), Int32(root), comm), "MPI_Bcast of \(n) floats")
            offset += n
        }
    }

    /// `root`'s bytes, on every rank. Ranks that wait (while the root works alone, for minutes perhaps)
    /// poll every `poll` seconds instead of spinning in MPI, so they leave the cores to the root.
    public func broadcastQuietly(_ bytes: [UInt8], root: Int, poll: Double = 0.005) throws(MPIError) -> [UInt8] {
        let length = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
        defer { length.deallocate() }
        length.pointee = Int64(bytes.count)
        var request: MPI_Request?
        try check(MPI_Ibcast(length, 1, kondate_mpi_int64(), Int32(root), comm, &request), "MPI_Ibcast of a length")
        while true {
            var done: Int32 = 0
            try check(MPI_Test(&request, &done, kondate_mpi_status_ignore()), "MPI_Test")
            if done != 0 { break }
            usleep(useconds_t(poll * 1e6))
        }
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length.pointee))
        guard !buffer.isEmpty else { return buffer }
        let count = buffer.count
        let code = buffer.withUnsafeMutableBytes { raw in MPI_Bcast(raw.baseAddress, Int32(count), kondate_mpi_byte(), Int32(root), comm) }
        try check(code, "MPI_Bcast of \(count) bytes")
        return buffer
    }

    // MARK: Point to point

    public func send(_ buffer: UnsafeBufferPointer<Float>, to destination: Int, tag: Int = 0) throws(MPIError) {
        var offset = 0
        repeat {
            let n = min(Self.maxChunk, buffer.count - offset)
            try check(MPI_Send(buffer.baseAddress.map { $0 + offset }, Int32(n), kondate_mpi_float(), Int32(destination), Int32(tag), comm),
                      "MPI_Send of \(n) floats to rank \(destination)")
            offset += n
        } while offset < buffer.count
    }

    public func receive(_ buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int = 0) throws(MPIError) {
        var offset = 0
        repeat {
            let n = min(Self.maxChunk, buffer.count - offset)
            try check(MPI_Recv(buffer.baseAddress.map { $0 + offset }, Int32(n), kondate_mpi_float(), Int32(source), Int32(tag), comm,
                               kondate_mpi_status_ignore()), "MPI_Recv of \(n) floats from rank \(source)")
            offset += n
        } while offset < buffer.count
    }
}

/// The tensor × pipeline × data layout of a world, in Megatron-LM's rank order (tensor fastest, then
/// data, then pipeline): world rank r has tensor rank r mod T, data rank (r / T) mod D and pipeline rank
/// r / (T·D). `Communicator.groups` builds the three sub-communicators.
public struct ParallelLayout: Sendable, Equatable {
    public var tensor: Int, pipeline: Int, data: Int
    public init(tensor: Int, pipeline: Int, data: Int) {
        self.tensor = tensor
        self.pipeline = pipeline
        self.data = data
    }
    public var worldSize: Int { tensor * pipeline * data }

    /// (tensor, data, pipeline) coordinates of a world rank.
    public func coordinates(of rank: Int) -> (tensor: Int, data: Int, pipeline: Int) {
        (rank % tensor, (rank / tensor) % data, rank / (tensor * data))
    }
}

extension Communicator {
    /// The tensor, data and pipeline groups this rank belongs to.
    public func groups(_ layout: ParallelLayout) throws -> (tensor: Communicator, data: Communicator, pipeline: Communicator) {
        guard layout.worldSize == size else {
            throw MPIError("layout tensor \(layout.tensor) × pipeline \(layout.pipeline) × data \(layout.data) = \(layout.worldSize) ranks, but the world has \(size)")
        }
        let c = layout.coordinates(of: rank)
        // Same (data, pipeline) → one tensor group; same (tensor, pipeline) → one data group; same (tensor, data) → one pipeline group.
        let tensor = try split(color: c.data + layout.data * c.pipeline, key: c.tensor)
        let data = try split(color: c.tensor + layout.tensor * c.pipeline, key: c.data)
        let pipeline = try split(color: c.tensor + layout.tensor * c.data, key: c.pipeline)
        return (tensor, data, pipeline)
    }
}

extension MPIError {
    /// A layout or usage problem found before any MPI call.
    init(_ message: String) {
        operation = "layout"
        code = -1
        self.message = message
    }
}
