import Foundation

/// A deadline on the blocking MPI calls of a training stage, so that a rank that hangs without dying
/// ends the job with the rank named instead of leaving every other rank waiting for ever.
///
/// While armed (by the training stages), a thread of each rank checks twice a second:
/// - a rank that has made no MPI call for `deadline` seconds — it is stuck in its own work — says so,
///   naming itself, and exits, which makes mpirun end the whole job;
/// - a rank that has waited in one blocking call for `deadline` plus a grace of a tenth (at least 2 s)
///   says which call and exits. The grace lets a stuck rank name itself first.
/// The deadline is `KONDATE_COLLECTIVE_DEADLINE` seconds, 1 800 by default: generous for the CPU
/// runtime's steps, short against a job that would otherwise hang until its allocation runs out.
public final class CollectiveWatchdog: @unchecked Sendable {
    public static let shared = CollectiveWatchdog()

    private let lock = NSLock()
    private var armed = false
    private var deadline = 1_800.0
    private var rank = 0
    private var inside: String?
    private var since = Date()
    private var started = false

    /// The deadline from the environment (seconds), or 1 800.
    public static var configuredDeadline: Double {
        ProcessInfo.processInfo.environment["KONDATE_COLLECTIVE_DEADLINE"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 1_800
    }

    /// Starts watching this rank's MPI calls.
    public func arm(rank: Int, deadline: Double = CollectiveWatchdog.configuredDeadline) {
        lock.lock()
        defer { lock.unlock() }
        self.rank = rank
        self.deadline = deadline
        armed = true
        since = Date()
        inside = nil
        guard !started else { return }
        started = true
        let thread = Thread { [unowned self] in self.watch() }
        thread.name = "kondate collective watchdog"
        thread.start()
    }

    public func disarm() {
        lock.lock()
        armed = false
        lock.unlock()
    }

    /// Around every blocking MPI call.
    func enter(_ what: @autoclosure () -> String) {
        lock.lock()
        if armed { inside = what(); since = Date() }
        lock.unlock()
    }

    func leave() {
        lock.lock()
        if armed { inside = nil; since = Date() }
        lock.unlock()
    }

    private func watch() {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            lock.lock()
            let (armed, inside, elapsed, deadline, rank) = (self.armed, self.inside, Date().timeIntervalSince(since), self.deadline, self.rank)
            lock.unlock()
            guard armed else { continue }
            let grace = max(2, deadline / 10)
            var message: String?
            if let inside, elapsed > deadline + grace {
                message = "rank \(rank) has waited \(Int(elapsed)) s in \(inside) for the other ranks (deadline \(Int(deadline)) s, " +
                    "KONDATE_COLLECTIVE_DEADLINE): a rank has stopped without dying; ending the job"
            } else if inside == nil, elapsed > deadline {
                message = "rank \(rank) has made no MPI call for \(Int(elapsed)) s (deadline \(Int(deadline)) s, KONDATE_COLLECTIVE_DEADLINE): " +
                    "this rank is hung; ending the job"
            }
            if let message {
                FileHandle.standardError.write(Data("kondate: \(message)\n".utf8))
                // mpirun ends every rank when one exits without finalising.
                _exit(1)
            }
        }
    }
}
