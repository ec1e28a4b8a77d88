import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// `kondate comm-check` under a real `mpirun`: Kondate's MPI collectives and process groups give the
/// expected results on every rank.
@Suite("kondate comm-check (MPI)", .serialized)
struct CommCheckCLITests {
    static func mpirun(_ ranks: Int, _ arguments: [String]) throws -> Result {
        try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["mpirun"] + (geteuid() == 0 ? ["--allow-run-as-root"] : []) +
            ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), binary.path] + arguments)
    }

    @Test(arguments: [2, 3, 4])
    func collectivesAndGroupsAreRight(ranks: Int) throws {
        let result = try Self.mpirun(ranks, ["comm-check", "--elements", "4096", "--repeats", "1"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("comm-check: \(ranks) ranks"))
        #expect(result.stdout.contains("all checks passed on every rank"), "\(result.stdout)")
        #expect(!result.stdout.contains("FAIL"))
        #expect(result.stdout.contains("ok   groups T1×P\(ranks)×D1") && result.stdout.contains("ok   send/receive ring"))
        if ranks == 4 { #expect(result.stdout.contains("ok   groups T2×P2×D1")) }
    }

    @Test func aSingleProcessRunsWithoutMpirun() throws {
        let result = try kondate(["comm-check", "--elements", "16", "--repeats", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("comm-check: 1 rank") && result.stdout.contains("all checks passed"))
    }
}
