import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A request to stop training cleanly: the `pretrain` and `tune.<name>` loops check it after every
/// optimizer step, write a checkpoint at that step and throw `StageInterrupted`; running the same
/// command again resumes from that checkpoint.
///
/// `install()` makes SIGINT (Ctrl-C) and SIGTERM request a stop; a second signal while a stop is
/// pending restores the default action and re-raises it, so a double Ctrl-C exits at once.
///
/// Testing aid: `KONDATE_STOP_AFTER_STEP=STAGE:N` (e.g. `pretrain:5`, `tune.qa:3`) requests a stop,
/// named `KONDATE_STOP_AFTER_STEP`, once stage STAGE has finished its step N; a bare `N` applies to
/// every training stage.
public enum StopRequest {
    /// The environment variable read by `stopAfterStep(stage:)`.
    public static let environmentVariable = "KONDATE_STOP_AFTER_STEP"

    /// 0: no request; a positive value: the signal number that asked; −1: `request(_:)` (name in `name`).
    /// A raw pointer, not a Swift global `var`: a signal handler may only store a word, and a global
    /// `var` would go through exclusivity checking, which is not async-signal-safe. Aligned 32-bit
    /// loads and stores are single instructions on every supported CPU (C's `volatile sig_atomic_t`).
    private nonisolated(unsafe) static let flag: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()
    private static let name = NameBox()

    private final class NameBox: @unchecked Sendable {
        let lock = NSLock()
        var value: String?
        func get() -> String? { lock.lock(); defer { lock.unlock() }; return value }
        func set(_ v: String?) { lock.lock(); value = v; lock.unlock() }
    }

    /// Installs the SIGINT and SIGTERM handlers (idempotent) and unblocks both signals on the calling
    /// thread: a process inherits its parent's signal mask, and a parent that spawns it from a thread
    /// blocking them (as Foundation's `Process` does from a Dispatch thread) would otherwise leave
    /// Ctrl-C and SIGTERM pending forever.
    public static func install() {
        _ = flag   // initialise the global now: lazy initialisation is not async-signal-safe
        for sig in [SIGINT, SIGTERM] { _ = signal(sig, stopSignalHandler) }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The signal (`SIGINT`, `SIGTERM`) or the name passed to `request(_:)` that asked to stop; nil if none.
    public static var requested: String? {
        let value = flag.pointee
        switch value {
        case 0: return nil
        case -1: return name.get() ?? "a stop request"
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(value)"
        }
    }

    /// Requests a stop, as a signal would (tests, programmatic use).
    public static func request(_ requester: String) {
        name.set(requester)
        flag.pointee = -1
    }

    /// Forgets any request.
    public static func reset() {
        flag.pointee = 0
        name.set(nil)
    }

    /// The step after which `stage` (`pretrain`, `tune.<name>`) should stop, from
    /// `KONDATE_STOP_AFTER_STEP` (`STAGE:N`, or `N` for every stage); nil when unset or for another stage.
    public static func stopAfterStep(stage: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        guard let text = environment[environmentVariable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        guard let colon = text.lastIndex(of: ":") else { return Int(text) }
        guard text[..<colon] == stage else { return nil }
        return Int(text[text.index(after: colon)...])
    }

    /// Requests a stop (named by the environment variable) when `step` is the one `KONDATE_STOP_AFTER_STEP` names.
    static func checkStopAfter(_ stopAfter: Int?, step: Int) {
        if let stopAfter, step == stopAfter { request(environmentVariable) }
    }

    fileprivate static func signalled(_ sig: Int32) {
        if flag.pointee != 0 {
            // Second signal: give up on the clean stop.
            _ = signal(sig, SIG_DFL)
            _ = raise(sig)
            return
        }
        flag.pointee = sig
    }
}

/// The C signal handler: only stores the signal number (or re-raises on the second signal).
private func stopSignalHandler(_ sig: Int32) {
    StopRequest.signalled(sig)
}

/// A training stage stopped at a step boundary because a stop was requested; its checkpoint at that
/// step lets the same command resume.
public struct StageInterrupted: Error, CustomStringConvertible, Sendable {
    /// `pretrain` or `tune.<name>`.
    public var stage: String
    /// Steps completed (the checkpoint's step).
    public var step: Int
    /// The checkpoint directory written at `step`.
    public var checkpoint: String
    /// What asked to stop: `SIGINT`, `SIGTERM`, or a `StopRequest.request` name.
    public var signal: String

    public init(stage: String, step: Int, checkpoint: String, signal: String) {
        self.stage = stage
        self.step = step
        self.checkpoint = checkpoint
        self.signal = signal
    }

    public var description: String {
        "\(stage): stopped by \(signal) after step \(step); checkpoint \(checkpoint); run the same command again to resume"
    }
}
