import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KondateRuntime
import Testing

/// The run lock tells "held by another run" (EWOULDBLOCK) from "this filesystem cannot lock".
@Suite("Run lock")
struct RunLockTests {
    @Test func heldAndUnsupportedAreToldApart() throws {
        let dir = NSTemporaryDirectory() + "kondate-lock-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try RunLock(directory: dir, command: "kondate run first")
        #expect { try RunLock(directory: dir, command: "kondate run second") } throws: {
            "\($0)".contains("is in use by another kondate run") && "\($0)".contains("kondate run first")
        }
        _ = first
        let other = dir + "/other"
        for code in [ENOLCK, EOPNOTSUPP] {
            #expect { try RunLock(directory: other, command: "kondate run", lock: { _, _ in errno = code; return -1 }) } throws: {
                "\($0)".contains("does not support locking") && "\($0)".contains("KONDATE_RUN_LOCK=off") && !"\($0)".contains("in use")
            }
        }
        // An interrupted call is retried.
        var calls = 0
        let retried = try RunLock(directory: other, command: "kondate run", lock: { fd, op in
            calls += 1
            if calls == 1 { errno = EINTR; return -1 }
            return flock(fd, op)
        })
        #expect(calls == 2)
        _ = retried
    }
}
