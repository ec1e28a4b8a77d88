import Foundation

/// The process's own memory, as Linux reports it in `/proc/self/status`.
public enum ProcessMemory {
    /// The peak resident set size so far (`VmHWM`), in bytes; nil where /proc is not available.
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }

    /// The resident set size now (`VmRSS`), in bytes.
    public static func residentBytes() -> Int? { field("VmRSS:") }

    static func field(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let kB = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kB * 1024
    }
}
