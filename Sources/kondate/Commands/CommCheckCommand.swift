import ArgumentParser
import Foundation
import KondateMPI
import KondateSupport

struct CommCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm-check",
        abstract: "Check MPI and Kondate's collectives across the ranks of an mpirun, and measure their bandwidth.",
        discussion: """
        Run it under MPI, e.g. `mpirun -np 4 kondate comm-check` (as root in a container add \
        --allow-run-as-root; --bind-to none lets OpenBLAS threads spread). Every rank checks the results of \
        all-reduce (sum, max), reduce-scatter, all-gather, broadcast, a send/receive ring and the \
        tensor/pipeline/data groups of every layout that divides the world, in Megatron's rank order; \
        rank 0 prints one line per check and the all-reduce bandwidth. Exit status: 0 when every check \
        passes on every rank, 1 otherwise.
        """)

    @Option(help: "Elements (floats) per rank for the bandwidth measurement.") var elements: Int = 1 << 22
    @Option(help: "Timed all-reduce repetitions.") var repeats: Int = 5

    func validate() throws {
        guard elements >= 1 else { throw ValidationError("--elements must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        let world: Communicator
        do { world = try Communicator.world() } catch {
            printError("kondate comm-check: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        defer { Communicator.finalize() }
        let result = CommunicationCheck.run(world: world, elements: elements, repeats: repeats)
        let p = world.size, failed = result.failedOnAllRanks
        if world.rank == 0 {
            print("comm-check: \(p) rank\(p == 1 ? "" : "s")")
            for line in result.lines { print("  " + line) }
            print(failed == 0 ? "all checks passed on every rank" : "\(failed) check\(failed == 1 ? "" : "s") failed (summed over ranks)")
        } else if !result.failures.isEmpty {
            printError("rank \(world.rank): failed: \(result.failures.joined(separator: ", "))\n")
        }
        if failed != 0 { throw ExitCode(1) }
    }
}
