import CZlib
import Foundation
import KondateSupport

/// Reads a file line by line in 1 MiB chunks; gzip files (by content, not name) are decompressed on
/// the fly by zlib, which reads plain files unchanged. Lines are handed out as byte slices without
/// the trailing "\n" (a "\r" before it is kept: it is content for JSON and text alike).
///
/// Bounded (docs/limits.md): a line longer than `maxLineBytes` is never held — it is skipped and
/// reported to `oversized`; a gzip file that decompresses to more than `maxRatio` times its size (past
/// the first 64 MiB) is an error, as a decompression bomb.
public final class LineReader {
    public struct OpenError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    private let file: gzFile
    public let path: String
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0
    private var eof = false
    private var pending: [UInt8] = []
    /// 1-based number of the line last returned.
    public private(set) var lineNumber = 0
    /// Uncompressed bytes read so far.
    public private(set) var bytesRead = 0
    /// The longest line handed to `forEachLine` (and the most `readAll` returns).
    public var maxLineBytes = Limits.documentBytes
    /// Decompressed bytes per byte of a gzip file, at most.
    public var maxRatio = Limits.gzipRatio
    private let compressedBytes: Int
    private let compressed: Bool

    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw OpenError(path: path, reason: isDirectory.boolValue ? "is a directory" : "no such file")
        }
        guard let handle = gzopen(path, "rb") else { throw OpenError(path: path, reason: "cannot open (\(String(cString: strerror(errno))))") }
        gzbuffer(handle, 1 << 18)
        file = handle
        compressedBytes = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
        // gzdirect answers only after the first read has looked at the header.
        var probe: UInt8 = 0
        if gzread(handle, &probe, 0) < 0 { compressed = true } else { compressed = gzdirect(handle) == 0 }
    }

    deinit { gzclose(file) }

    private func fill() throws {
        let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            throw OpenError(path: path, reason: "cannot read: \(message) (corrupt or truncated gzip?)")
        }
        start = 0
        end = Int(n)
        bytesRead += Int(n)
        if n == 0 { eof = true }
        if compressed && bytesRead > 64 << 20 && bytesRead / max(1, maxRatio) > compressedBytes {
            throw OpenError(path: path, reason: "decompresses to more than \(maxRatio) times its \(compressedBytes) bytes; a decompression bomb? " +
                            "(KONDATE_MAX_GZIP_RATIO raises the limit)")
        }
    }

    /// Calls `body` with each line's bytes and its 1-based line number; stops when `body` returns false.
    /// A line longer than `maxLineBytes` goes to `oversized` (its line number and length) instead.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool,
                            oversized: (Int, Int) throws -> Void = { _, _ in }) throws {
        var skipped: Int? = nil   // the length so far of a line being skipped
        while true {
            if start >= end {
                if eof { break }
                try fill()
                if eof { break }
            }
            let newline: Int? = buffer.withUnsafeBufferPointer { b in
                var k = start
                while k < end { if b[k] == 0x0A { return k }; k += 1 }
                return nil
            }
            if let nl = newline, skipped != nil || pending.count + (nl - start) > maxLineBytes {
                lineNumber += 1
                try oversized(lineNumber, (skipped ?? pending.count) + (nl - start))
                skipped = nil
                pending.removeAll(keepingCapacity: false)
                start = nl + 1
                continue
            }
            if let nl = newline {
                lineNumber += 1
                let keepGoing: Bool
                if pending.isEmpty {
                    keepGoing = try buffer.withUnsafeBufferPointer { b in try body(UnsafeBufferPointer(rebasing: b[start..<nl]), lineNumber) }
                } else {
                    pending.append(contentsOf: buffer[start..<nl])
                    keepGoing = try pending.withUnsafeBufferPointer { try body($0, lineNumber) }
                    pending.removeAll(keepingCapacity: true)
                }
                start = nl + 1
                if !keepGoing { return }
            } else if let length = skipped {
                skipped = length + (end - start)
                start = end
            } else if pending.count + (end - start) > maxLineBytes {
                skipped = pending.count + (end - start)
                pending.removeAll(keepingCapacity: false)
                start = end
            } else {
                pending.append(contentsOf: buffer[start..<end])
                start = end
            }
        }
        if let length = skipped {
            lineNumber += 1
            try oversized(lineNumber, length)
        } else if !pending.isEmpty {
            lineNumber += 1
            _ = try pending.withUnsafeBufferPointer { try body($0, lineNumber) }
            pending.removeAll()
        }
    }

    /// The whole (decompressed) file, or nil (having read it through) when it is longer than `maxLineBytes`.
    public func readAll() throws -> [UInt8]? {
        var out: [UInt8] = []
        var tooLong = false
        while true {
            try fill()
            if eof { break }
            if tooLong { continue }
            if out.count + end > maxLineBytes {
                tooLong = true
                out = []
                continue
            }
            out.append(contentsOf: buffer[0..<end])
        }
        return tooLong ? nil : out
    }
}
