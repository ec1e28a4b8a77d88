import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe file replacement: write to `PATH.tmp`, fsync it, rename over `PATH` (atomic on POSIX
/// file systems), then fsync the directory so the rename itself is durable. A reader sees the old file
/// or the new one, never a torn one; a failed write (disk full) leaves the old file in place.
public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Writes the bytes produced by `body` (called with a handle open on the temporary file).
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let tmp = path + ".tmp"
        _ = FileManager.default.createFile(atPath: tmp, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: tmp) else {
            throw Failure(path: path, reason: "cannot create \(tmp) (\(String(cString: strerror(errno))))")
        }
        do {
            try body(handle)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            unlink(tmp)
            throw Failure(path: path, reason: "write failed: \(error)")
        }
        try commit(tmp, to: path)
    }

    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    /// Renames a finished temporary file (or directory) over `path` and syncs the parent directory.
    public static func commit(_ tmp: String, to path: String) throws {
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            throw Failure(path: path, reason: "cannot rename \(tmp) into place (\(reason))")
        }
        syncDirectory(containing: path)
    }

    /// fsync of the directory holding `path`, so a rename or a new file survives a crash.
    public static func syncDirectory(containing path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
