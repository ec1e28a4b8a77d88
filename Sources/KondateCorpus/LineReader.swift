import CZlib
import Foundation

/// Reads a file line by line in 1 MiB chunks; gzip files (by content, not name) are decompressed on
/// the fly by zlib, which reads plain files unchanged. Lines are handed out as byte slices without
/// the trailing "\n" (a "\r" before it is kept: it is content for JSON and text alike).
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

    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw OpenError(path: path, reason: isDirectory.boolValue ? "is a directory" : "no such file")
        }
        guard let handle = gzopen(path, "rb") else { throw OpenError(path: path, reason: "cannot open (\(String(cString: strerror(errno))))") }
        gzbuffer(handle, 1 << 18)
        file = handle
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
    }

    /// Calls `body` with each line's bytes and its 1-based line number; stops when `body` returns false.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool) throws {
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
            } else {
                pending.append(contentsOf: buffer[start..<end])
                start = end
            }
        }
        if !pending.isEmpty {
            lineNumber += 1
            _ = try pending.withUnsafeBufferPointer { try body($0, lineNumber) }
            pending.removeAll()
        }
    }

    /// The whole (decompressed) file.
    public func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            try fill()
            if eof { break }
            out.append(contentsOf: buffer[0..<end])
        }
        return out
    }
}
