import Foundation
import KondateCollectives
import KondateMPI
import KondateRecipe
import KondateSupport
import KondateTraining

/// `kondate run` under `mpirun -np N` (or `srun`): the ranks of one job and the recipe's layout.
///
/// World rank 0 leads: it holds the run lock, runs the data stages (corpus, tokenizer, mix), evaluation
/// and the release alone, and writes the manifest. Training stages run on every rank: before one
/// starts, the leader announces it and the other ranks (followers, which wait quietly meanwhile) join.
/// At the end the leader announces the outcome and every rank finalises MPI.
///
/// Failures never leave a rank waiting: an error every rank sees at once (a stop request, a checkpoint
/// that could not be written, a non-finite loss) ends every rank's stage together; any other error in
/// a training stage is printed with its rank and aborts the whole job (`MPI_Abort`), as does a rank
/// that dies, which mpirun notices.
public final class DistributedContext: @unchecked Sendable {
    public let world: Communicator
    public let layout: ParallelLayout
    public let groups: ParallelGroups
    public var rank: Int { world.rank }
    public var isLeader: Bool { world.rank == 0 }

    init(world: Communicator, layout: ParallelLayout, groups: ParallelGroups) {
        self.world = world
        self.layout = layout
        self.groups = groups
    }

    /// Whether this process was started by an MPI launcher (OpenMPI's mpirun, or PMI/PMIx under srun).
    public static var launchedByMPI: Bool { Communicator.launchedByLauncher }

    /// Ranks of this job on this node, as the launcher says (1 when unknown).
    public static var localRanks: Int {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"].lazy.compactMap { env[$0].flatMap { Int($0) } }.first ?? 1
    }

    /// Starts MPI when launched by mpirun with more than one rank and checks the recipe's layout
    /// against the world; nil for a single process (MPI finalised again).
    public static func start(recipe: Recipe) throws -> DistributedContext? {
        guard launchedByMPI else { return nil }
        let world = try Communicator.world()
        guard world.size > 1 else {
            Communicator.finalize()
            return nil
        }
        let p = recipe.parallel
        let layout = ParallelLayout(tensor: p.tensor, pipeline: p.pipeline, data: world.size / max(1, p.tensor * p.pipeline))
        guard layout.worldSize == world.size else {
            Communicator.finalize()
            throw KondateError(.mpi, "mpirun started \(world.size) ranks, which parallel.tensor \(p.tensor) × parallel.pipeline \(p.pipeline) " +
                               "does not divide; start a multiple of \(p.tensor * p.pipeline) ranks",
                               at: recipe.tree.at("parallel.tensor")?.location ?? recipe.tree.keyLocation("parallel"))
        }
        let groups = try ParallelGroups.mpi(world: world, layout: layout, zeroStage: p.zeroStage)
        return DistributedContext(world: world, layout: layout, groups: groups)
    }

    /// The MPI job as the manifest's `environment.mpi` records it: the library, the ranks, and the
    /// ranks on this node.
    public var mpiJSON: JSON {
        .object([("library", .string(Communicator.libraryVersion())), ("ranks", .int(world.size)), ("local_ranks", .int(Self.localRanks))])
    }

    /// The layout as the manifest and checkpoints record it.
    public var layoutJSON: JSON {
        .object([("ranks", .int(world.size)), ("tensor", .int(layout.tensor)), ("pipeline", .int(layout.pipeline)),
                 ("data", .int(layout.data)), ("zero", .bool(groups.zero)), ("zero_stage", .int(groups.zeroStage))])
    }

    // MARK: Announcements

    /// The leader tells every follower what to do next (a training stage to join, or the end).
    public func announce(_ message: JSON) throws {
        precondition(isLeader)
        _ = try world.broadcastQuietly(Array(message.rendered(pretty: false).utf8), root: 0)
    }

    /// A follower waits (quietly) for the leader's next announcement.
    func awaitAnnouncement() throws -> JSON {
        let bytes = try world.broadcastQuietly([], root: 0)
        return try JSONParser.parse(String(decoding: bytes, as: UTF8.self))
    }

    /// Ends this process: MPI finalised, exit status `code`.
    public func finish(_ code: Int32) -> Never {
        Communicator.finalize()
        exit(code)
    }

    /// Prints `message` naming this rank and aborts every rank of the job.
    public func abortJob(_ message: String) -> Never {
        FileHandle.standardError.write(Data("kondate: rank \(rank): \(message); ending the job\n".utf8))
        world.abort(code: 1)
    }

    /// The stop request of any rank, agreed by all ranks (every rank stops after the same step); the
    /// local request alone without a job.
    static func agreedStop(_ distributed: DistributedContext?) -> String? {
        let local = StopRequest.requested
        guard let distributed else { return local }
        let any = distributed.groups.world.allReduce(local == nil ? 0 : 1) > 0
        return any ? (local ?? "SIGTERM") : nil
    }

    /// Errors that every rank of a training stage raises together, so no rank is left waiting.
    static func isCollective(_ error: Error) -> Bool {
        if error is StageInterrupted || (error as? FileError)?.kind == .checkpoint { return true }
        if let e = error as? TrainingError {
            switch e {
            case .nonFinite, .noTargets, .layout: return true
            case .model: return false
            }
        }
        return false
    }

    /// A follower's life: join every training stage the leader announces until it announces the end.
    /// Returns the exit status.
    /// The whole job on this rank; never returns. A follower follows the leader's announcements; the
    /// leader runs `lead` (the run, returning its exit status), then tells the followers how it ended.
    /// Every rank then finalises MPI and exits with that status.
    public func runJob(recipe: Recipe, directory: String, threads: Int, lead: () -> Int32) -> Never {
        if !isLeader { finish(follow(recipe: recipe, directory: directory, threads: threads)) }
        let status = lead()
        do { try announce(.object([("done", .int(Int(status)))])) } catch { abortJob("\(error)") }
        finish(status)
    }

    public func follow(recipe: Recipe, directory: String, threads: Int) -> Int32 {
        let context = StageContext(recipe: recipe, directory: directory, threads: threads, log: { _ in })
        context.distributed = self
        while true {
            let message: JSON
            do { message = try awaitAnnouncement() } catch { abortJob("\(error)") }
            if let status = message["done"]?.intValue { return Int32(status) }
            guard let stage = message["stage"]?.stringValue else { abortJob("unexpected announcement \(message.rendered(pretty: false))") }
            do {
                _ = try context.executeTraining(stage)
            } catch let stop as StageInterrupted {
                return stop.signal == "SIGTERM" ? 143 : 130
            } catch {
                // The leader reports collective errors; anything else only this rank knows about.
                if Self.isCollective(error) { return 1 }
                abortJob("\(stage): \(error)")
            }
        }
    }
}

// MARK: Checkpoints the ranks agree on

extension DistributedContext {
    /// The checkpoint to resume from, the same on every rank: the leader lists `root` and chooses the
    /// newest; every rank then confirms that it sees that checkpoint (a filesystem that is not shared,
    /// or not yet in sync, shows ranks different listings, and ranks resuming from different steps
    /// would run mismatched collectives). Without a distributed context, the newest checkpoint.
    public static func agreedCheckpoint(_ root: String, _ context: DistributedContext?, stage: String) throws -> (step: Int, path: String)? {
        let rank = context?.rank
        func visible() throws -> [(step: Int, path: String)] {
            if let rank, hiddenOnRank(rank) { return [] }
            return try Checkpoint.list(root)
        }
        guard let context, context.world.size > 1 else { return try visible().last }
        let chosen = context.isLeader ? (try visible().last?.step ?? -1) : 0
        let step = Int(context.groups.world.allReduce(Double(context.isLeader ? chosen : 0)))
        let mine = step < 0 ? nil : try visible().first { $0.step == step }
        let missing = Int(context.groups.world.allReduce(step >= 0 && mine == nil ? 1 : 0))
        if missing > 0 {
            if step >= 0 && mine == nil {
                FileHandle.standardError.write(Data("kondate: rank \(context.rank): \(stage): checkpoint step \(step) is not under \(root) here\n".utf8))
            }
            throw KondateError(.checkpointFile, "\(stage): rank 0 resumes from step \(step) of \(root), but \(missing) rank\(missing == 1 ? " does" : "s do") " +
                               "not see that checkpoint (each names itself above); the run directory must be on a filesystem every rank shares")
        }
        return mine
    }

    /// `KONDATE_FAULT_HIDE_CHECKPOINTS=R` makes world rank R see no checkpoints (tests of the agreement).
    static func hiddenOnRank(_ rank: Int) -> Bool {
        ProcessInfo.processInfo.environment["KONDATE_FAULT_HIDE_CHECKPOINTS"].flatMap(Int.init) == rank
    }

    /// Waits until every rank has come here (after the leader changed shared files).
    public static func barrier(_ context: DistributedContext?) {
        guard let context, context.world.size > 1 else { return }
        _ = context.groups.world.allReduce(0)
    }
}

// MARK: A deadline on collectives

extension DistributedContext {
    /// Arms the collective deadline for a training stage (`CollectiveWatchdog`); nothing in one process.
    public static func watchCollectives(_ context: DistributedContext?) {
        guard let context, context.world.size > 1 else { return }
        CollectiveWatchdog.shared.arm(rank: context.rank)
    }

    /// Disarms it before work that only some ranks do (the leader's export).
    public static func stopWatchingCollectives() { CollectiveWatchdog.shared.disarm() }

    /// `KONDATE_FAULT_HANG_RANK=R:STEP` makes world rank R stop at the start of step STEP (0-based) without
    /// dying, so that tests can check the collective deadline ends the job.
    public static func hangIfInjected(rank: Int?, step: Int) {
        guard let rank, let text = ProcessInfo.processInfo.environment["KONDATE_FAULT_HANG_RANK"] else { return }
        let parts = text.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 2, parts[0] == rank, parts[1] == step else { return }
        FileHandle.standardError.write(Data("kondate: rank \(rank): KONDATE_FAULT_HANG_RANK stops this rank at step \(step)\n".utf8))
        while true { sleep(60) }
    }
}
