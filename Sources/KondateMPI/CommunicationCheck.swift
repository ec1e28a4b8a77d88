import Foundation
import KondateSupport

/// `kondate comm-check`: every collective Kondate uses, checked with exact expected values on the
/// world, then the all-reduce bus bandwidth. Every rank of the world must call `run` together.
public enum CommunicationCheck {
    public struct Result: Sendable {
        /// One line per check (`ok  name` or `FAIL name`) and the bandwidth line, on this rank.
        public var lines: [String]
        /// The names of the checks that failed on this rank.
        public var failures: [String]
        /// Failed checks summed over every rank.
        public var failedOnAllRanks: Int
    }

    /// - Parameters:
    ///   - elements: floats per rank in the timed all-reduce.
    ///   - repeats: timed all-reduce repetitions.
    public static func run(world: Communicator, elements: Int, repeats: Int) -> Result {
        let p = world.size, r = world.rank
        var failures = [String]()
        var lines = [String]()
        func checkThat(_ name: String, _ ok: Bool) {
            lines.append("\(ok ? "ok  " : "FAIL") \(name)")
            if !ok { failures.append(name) }
        }
        do {
            // All-reduce: small integers are exact in Float, so sums compare exactly.
            var values = (0..<1000).map { Float(r * 1000 + $0) }
            try values.withUnsafeMutableBufferPointer { try world.allReduce($0, .sum) }
            let expectedSum = (0..<1000).map { i in Float((0..<p).reduce(0) { $0 + $1 * 1000 + i }) }
            checkThat("all-reduce sum", values == expectedSum)
            var maxima = [Float(r), Float(-r)]
            try maxima.withUnsafeMutableBufferPointer { try world.allReduce($0, .max) }
            checkThat("all-reduce max", maxima == [Float(p - 1), 0])
            checkThat("all-reduce of a double", try world.allReduce(Double(r + 1)) == Double(p * (p + 1) / 2))

            // Reduce-scatter: block b of rank q holds q + b; rank r receives Σ_q (q + r).
            let block = 7
            let send = (0..<(block * p)).map { Float(r + $0 / block) }
            var received = [Float](repeating: -1, count: block)
            try send.withUnsafeBufferPointer { s in try received.withUnsafeMutableBufferPointer { try world.reduceScatter(s, into: $0) } }
            checkThat("reduce-scatter", received == [Float](repeating: Float(p * (p - 1) / 2 + p * r), count: block))

            // All-gather: each rank fills its own block with its rank.
            var gathered = [Float](repeating: -1, count: block * p)
            for i in 0..<block { gathered[r * block + i] = Float(r) }
            try gathered.withUnsafeMutableBufferPointer { try world.allGather($0) }
            checkThat("all-gather", gathered == (0..<(block * p)).map { Float($0 / block) })

            // Broadcast from the last rank.
            var shared = r == p - 1 ? [1.5, 2.5, 3.5] : [Float](repeating: 0, count: 3)
            try shared.withUnsafeMutableBufferPointer { try world.broadcast($0, root: p - 1) }
            checkThat("broadcast", shared == [1.5, 2.5, 3.5])

            // Ring: even ranks send first, odd ranks receive first (no deadlock for any size).
            if p > 1 {
                let next = (r + 1) % p, previous = (r + p - 1) % p
                let outgoing: [Float] = [Float(r), Float(r) * 2]
                var incoming = [Float](repeating: -1, count: 2)
                if r % 2 == 0 {
                    try outgoing.withUnsafeBufferPointer { try world.send($0, to: next) }
                    try incoming.withUnsafeMutableBufferPointer { try world.receive($0, from: previous) }
                } else {
                    try incoming.withUnsafeMutableBufferPointer { try world.receive($0, from: previous) }
                    try outgoing.withUnsafeBufferPointer { try world.send($0, to: next) }
                }
                checkThat("send/receive ring", incoming == [Float(previous), Float(previous) * 2])
            }

            // Groups of every layout that divides the world: sizes, ranks, and a sum within each group.
            for t in 1...p where p % t == 0 {
                for pp in 1...(p / t) where (p / t) % pp == 0 {
                    let layout = ParallelLayout(tensor: t, pipeline: pp, data: p / t / pp)
                    let groups = try world.groups(layout)
                    let c = layout.coordinates(of: r)
                    var tensorSum: [Float] = [Float(r)]
                    try tensorSum.withUnsafeMutableBufferPointer { try groups.tensor.allReduce($0) }
                    let base = r - c.tensor
                    let expected = Float((0..<t).reduce(0) { $0 + base + $1 })
                    checkThat("groups T\(t)×P\(pp)×D\(layout.data)",
                              groups.tensor.size == t && groups.pipeline.size == pp && groups.data.size == layout.data &&
                              groups.tensor.rank == c.tensor && groups.data.rank == c.data && groups.pipeline.rank == c.pipeline &&
                              tensorSum == [expected])
                }
            }

            // Bandwidth: the all-reduce of `elements` floats per rank (bus bandwidth 2(p−1)/p × bytes / time).
            var big = [Float](repeating: 1, count: elements)
            try big.withUnsafeMutableBufferPointer { try world.allReduce($0) }
            try world.barrier()
            let started = Date()
            for _ in 0..<repeats { try big.withUnsafeMutableBufferPointer { try world.allReduce($0) } }
            try world.barrier()
            let seconds = Date().timeIntervalSince(started) / Double(repeats)
            let bytes = Double(elements * 4)
            let bus = p > 1 ? 2 * Double(p - 1) / Double(p) * bytes / seconds / 1e9 : 0
            lines.append("all-reduce of \(Format.grouped(elements)) floats: \(Format.fixed(seconds * 1000, 2)) ms, bus bandwidth \(Format.fixed(bus, 2)) GB/s")
        } catch {
            lines.append("FAIL \(error)")
            failures.append("\(error)")
        }
        let failed = (try? world.allReduce(Double(failures.count), .sum)) ?? Double(failures.count)
        return Result(lines: lines, failures: failures, failedOnAllRanks: Int(failed))
    }
}
