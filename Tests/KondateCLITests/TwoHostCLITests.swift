import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import KondateTestSupport

/// Two "hosts" on one machine: two network namespaces joined by a veth pair (scripts/two-hosts.sh), with
/// `mpirun` starting one rank in each and MPI restricted to TCP, so every byte between the ranks crosses the
/// veth pair as it would cross a network. See docs/distributed-testing.md.
@Suite("two hosts on one machine (MPI over TCP between network namespaces)", .serialized,
       .enabled(if: TwoHosts.unavailableReason == nil, Comment(rawValue: TwoHosts.unavailableReason ?? "")))
struct TwoHostCLITests {
    @Test func oneRankRunsInEachNamespace() throws {
        try withTwoHosts { hosts in
            let run = try hosts.run(["/bin/sh", "-c", "echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE at $(hostname -I)"],
                                    timeout: 30)
            #expect(run.status == 0 && !run.timedOut, "\(run.output)")
            #expect(run.stdout.contains("rank 0 of 2 at \(TwoHosts.address1)"), "\(run.output)")
            #expect(run.stdout.contains("rank 1 of 2 at \(TwoHosts.address2)"), "\(run.output)")
        }
    }

    /// comm-check passes with one rank per namespace, and its all-reduces really travelled over the veth pair:
    /// with two ranks each all-reduce of n bytes sends at least n bytes each way (half in the reduce-scatter,
    /// half in the all-gather, or the whole vector at once), and comm-check runs 1 + repeats of them.
    @Test func commCheckPassesOverTCPBetweenTheNamespaces() throws {
        let elements = 1 << 20, repeats = 3
        try withTwoHosts { hosts in
            let before = try hosts.trafficOfHost1()
            let run = try hosts.run([binary.path, "comm-check", "--elements", String(elements), "--repeats", String(repeats)])
            let after = try hosts.trafficOfHost1()
            #expect(run.status == 0 && !run.timedOut, "\(run.output)")
            #expect(run.stdout.contains("comm-check: 2 ranks"), "\(run.output)")
            #expect(run.stdout.contains("all checks passed on every rank") && !run.stdout.contains("FAIL"), "\(run.output)")
            let volume = (1 + repeats) * elements * MemoryLayout<Float>.size
            let sent = after.tx - before.tx, received = after.rx - before.rx
            #expect(sent >= volume, "\(hosts.veth1) sent \(sent) bytes, less than the \(volume) bytes of the all-reduces")
            #expect(received >= volume, "\(hosts.veth1) received \(received) bytes, less than the \(volume) bytes of the all-reduces")
            let bandwidth = run.stdout.split(separator: "\n").first { $0.contains("bus bandwidth") } ?? "no bandwidth line"
            print("two hosts: \(bandwidth.trimmingCharacters(in: .whitespaces)); \(hosts.veth1) tx \(sent) B, rx \(received) B; \(String(format: "%.2f", run.seconds)) s")
        }
    }

    /// A hung program fails the run within its timeout and leaves nothing running in the namespaces.
    @Test func aHangIsEndedByTheTimeout() throws {
        try withTwoHosts { hosts in
            let started = Date()
            let run = try hosts.run(["/bin/sleep", "60"], timeout: 2)
            let seconds = Date().timeIntervalSince(started)
            #expect(run.timedOut, "\(run.output)")
            #expect(seconds < 15)
            #expect(try hosts.processesLeft().isEmpty)
            print("two hosts: a 2 s timeout ended a hung mpirun after \(String(format: "%.1f", seconds)) s (status \(run.status))")
        }
    }
}

// MARK: - Running on two hosts

/// The outcome of an `mpirun` across the two hosts.
struct TwoHostRun {
    var status: Int32
    var stdout: String
    var stderr: String
    /// The run was ended because it outlived its timeout (status 124 or 137 from `timeout`, or killed by the
    /// backstop); the status then says nothing about the program.
    var timedOut: Bool
    var seconds: Double
    var output: String { stdout + stderr }
}

/// Runs `arguments` (a program and its arguments) with one rank on each of two fresh hosts, then tears them
/// down: a data-parallel `kondate run` across two hosts is
/// `runOnTwoHosts([binary.path, "run", recipe.path, ...], workingDirectory: runParent)`. The namespaces share
/// the file system, so a run directory under `workingDirectory` (or any path) is seen by both ranks.
func runOnTwoHosts(_ arguments: [String], environment: [String: String?] = [:], workingDirectory: URL = root,
                   timeout: TimeInterval = TwoHosts.defaultTimeout) throws -> TwoHostRun {
    try withTwoHosts { try $0.run(arguments, environment: environment, workingDirectory: workingDirectory, timeout: timeout) }
}

/// Brings two hosts up, runs `body` with them, and always tears them down (also when `body` throws or a
/// check fails).
func withTwoHosts<T>(_ body: (TwoHosts) throws -> T) throws -> T {
    let hosts = try TwoHosts.up()
    defer { hosts.down() }
    return try body(hosts)
}

/// Two network namespaces made by scripts/two-hosts.sh, named after this test process (and a counter), so
/// parallel test processes, and successive tests in one, never collide.
struct TwoHosts: Sendable {
    static let script = root.appendingPathComponent("scripts/two-hosts.sh")
    static let address1 = "10.77.0.1", address2 = "10.77.0.2"
    /// mpirun is ended after this long: a hang fails the test within a minute instead of hanging CI.
    static let defaultTimeout: TimeInterval = 40

    let h1: String, h2: String
    let veth1: String

    /// Why two hosts cannot be made here, or nil when they can: it needs root and `ip netns`.
    static let unavailableReason: String? = {
        guard geteuid() == 0 else { return "two hosts need root (to make network namespaces and a veth pair)" }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let probe = try? runProcess(URL(fileURLWithPath: ip), ["netns", "list"]), probe.status == 0
        else { return "two hosts need `ip netns` (iproute2), which is unavailable here" }
        return nil
    }()

    private static let counter = Counter()

    static func up() throws -> TwoHosts {
        let tag = "\(getpid())-\(counter.next())"
        let h1 = "kondate-\(tag)-h1", h2 = "kondate-\(tag)-h2"
        _ = try? script(h1, h2, ["down"])   // leftovers of a crashed process that had the same pid
        let up = try script(h1, h2, ["up"])
        guard up.status == 0 else {
            _ = try? script(h1, h2, ["down"])
            throw TwoHostError("scripts/two-hosts.sh up failed (\(up.status)): \(up.stdout)\(up.stderr)")
        }
        let info = try script(h1, h2, ["info"])
        let values = Dictionary(info.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }, uniquingKeysWith: { $1 })
        guard let veth1 = values["VETH1"] else { throw TwoHostError("scripts/two-hosts.sh info gave no VETH1: \(info.stdout)") }
        return TwoHosts(h1: h1, h2: h2, veth1: veth1)
    }

    func down() {
        if let result = try? Self.script(h1, h2, ["down"]), result.status != 0 {
            print("warning: scripts/two-hosts.sh down failed (\(result.status)): \(result.stderr)")
        }
    }

    /// Runs the program with two ranks, one per host, through scripts/two-hosts.sh run: `environment` is set
    /// for mpirun and exported to both ranks (`-x`), `workingDirectory` becomes theirs (`-wdir`). After
    /// `timeout` seconds the script's `timeout` ends mpirun (and mpirun its ranks); should that not end it,
    /// the process group is killed 6 s later, and whatever is left in the namespaces is ended: with the default
    /// 40 s a hang fails within a minute.
    func run(_ arguments: [String], environment: [String: String?] = [:], workingDirectory: URL = root,
             timeout: TimeInterval = TwoHosts.defaultTimeout) throws -> TwoHostRun {
        let limit = max(1, Int(timeout.rounded(.up)))
        var options = ["run", "--timeout", String(limit), "--wdir", workingDirectory.path]
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where value != nil { options += ["-x", name] }
        var run = try Self.runWithDeadline(Self.script, Self.names(h1, h2) + options + ["--"] + arguments,
                                           cwd: workingDirectory, environment: environment, deadline: TimeInterval(limit) + 6)
        if run.status == 124 || run.status == 137 { run.timedOut = true }
        if run.timedOut { _ = try? Self.script(h1, h2, ["stop"]) }
        return run
    }

    /// Bytes sent and received so far by host 1's end of the veth pair (all traffic between the hosts).
    func trafficOfHost1() throws -> (tx: Int, rx: Int) {
        func counter(_ name: String) throws -> Int {
            let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"),
                                   ["ip", "netns", "exec", h1, "cat", "/sys/class/net/\(veth1)/statistics/\(name)"])
            guard r.status == 0, let value = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw TwoHostError("cannot read \(name) of \(veth1) in \(h1): \(r.stderr)")
            }
            return value
        }
        return (try counter("tx_bytes"), try counter("rx_bytes"))
    }

    /// The processes still running in either namespace.
    func processesLeft() throws -> [String] {
        try [h1, h2].flatMap { ns in
            try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "netns", "pids", ns]).stdout.split(separator: "\n").map(String.init)
        }
    }

    private static func names(_ h1: String, _ h2: String) -> [String] { ["--h1", h1, "--h2", h2] }

    private static func script(_ h1: String, _ h2: String, _ arguments: [String]) throws -> Result {
        try runProcess(script, names(h1, h2) + arguments)
    }

    /// Runs a program in its own process group (Foundation's Process makes one on Linux), collecting its
    /// output as it comes; past `deadline` seconds the whole group is killed, so a hang cannot outlive it.
    private static func runWithDeadline(_ executable: URL, _ arguments: [String], cwd: URL, environment: [String: String?],
                                        deadline: TimeInterval) throws -> TwoHostRun {
        let (process, out, err) = testProcess(executable, arguments, cwd: cwd, environment: environment)
        let stdout = Buffer(), stderr = Buffer()
        for (handle, buffer) in [(out.fileHandleForReading, stdout), (err.fileHandleForReading, stderr)] {
            handle.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty { handle.readabilityHandler = nil; buffer.close() } else { buffer.append(data) }
            }
        }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let started = Date()
        try process.run()
        var timedOut = false
        if exited.wait(timeout: .now() + deadline) == .timedOut {
            timedOut = true
            let group = process.processIdentifier
            kill(-group, SIGTERM)
            if exited.wait(timeout: .now() + 2) == .timedOut {
                kill(-group, SIGKILL)
                _ = exited.wait(timeout: .now() + 2)
            }
        }
        // Let the last output arrive; processes left in the namespaces may hold the pipes open, so wait a little only.
        for (handle, buffer) in [(out.fileHandleForReading, stdout), (err.fileHandleForReading, stderr)] {
            if !buffer.waitUntilClosed(seconds: 2) { handle.readabilityHandler = nil }
        }
        return TwoHostRun(status: process.isRunning ? -1 : process.terminationStatus,
                          stdout: String(decoding: stdout.data, as: UTF8.self), stderr: String(decoding: stderr.data, as: UTF8.self),
                          timedOut: timedOut, seconds: Date().timeIntervalSince(started))
    }
}

struct TwoHostError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

private final class Buffer: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes = Data()
    private let closed = DispatchSemaphore(value: 0)
    func append(_ more: Data) { lock.lock(); bytes.append(more); lock.unlock() }
    func close() { closed.signal() }
    func waitUntilClosed(seconds: Double) -> Bool { closed.wait(timeout: .now() + seconds) == .success }
    var data: Data { lock.lock(); defer { lock.unlock() }; return bytes }
}
