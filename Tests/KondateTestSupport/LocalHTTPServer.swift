import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal HTTP/1.1 server on 127.0.0.1 for tests that talk to an HTTP endpoint.
///
/// It listens on an ephemeral port and serves connections one at a time on a background thread: each
/// connection carries one request (headers up to the blank line, then `Content-Length` bytes of body) and
/// gets one response with `Connection: close`. Every request is recorded in `requests` before the handler
/// answers it. `stop()` (also run on deinit) shuts the listening socket down; the thread then closes it and ends.
public final class LocalHTTPServer: @unchecked Sendable {
    /// One request as received.
    public struct Request: Sendable {
        public var method: String
        /// The request target as sent, query included, e.g. `/v1/chat/completions`.
        public var path: String
        /// Header values by lowercased name; a repeated header keeps its last value.
        public var headers: [String: String]
        public var body: Data

        public init(method: String, path: String, headers: [String: String], body: Data) {
            self.method = method
            self.path = path
            self.headers = headers
            self.body = body
        }

        /// The body decoded as UTF-8.
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    /// One response to send. `Content-Length` and `Connection: close` are added to `headers`.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// A response whose body is `text` with `Content-Type: application/json`.
        public static func json(_ text: String, status: Int = 200) -> Response {
            Response(status: status, headers: ["Content-Type": "application/json"], body: Data(text.utf8))
        }

        /// A response whose body is `text` with `Content-Type: text/plain; charset=utf-8`.
        public static func text(_ text: String, status: Int = 200) -> Response {
            Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Data(text.utf8))
        }
    }

    /// Failure to open the listening socket.
    public struct SocketError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The port the server listens on.
    public let port: Int
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// Every request received so far, in arrival order.
    public var requests: [Request] { state.requests }

    private let state: State

    /// Starts listening on an ephemeral port of 127.0.0.1; `handler` answers each request on the server's thread.
    public init(handler: @escaping @Sendable (Request) -> Response) throws {
        let fd = try Self.boundSocket(reuseAddress: true)
        guard listen(fd, 16) == 0 else {
            let reason = Self.errnoText()
            _ = close(fd)
            throw SocketError(description: "listen on 127.0.0.1 failed: \(reason)")
        }
        port = try Self.localPort(of: fd)
        state = State(listener: fd, handler: handler)
        let state = state
        let thread = Thread { state.serve() }
        thread.name = "LocalHTTPServer:\(port)"
        thread.start()
    }

    /// A server that answers the n-th request with `responses[n]`, and with the last response once they run out.
    public convenience init(responses: [Response]) throws {
        precondition(!responses.isEmpty, "LocalHTTPServer needs at least one response")
        let counter = Counter()
        try self.init { _ in responses[min(counter.next(), responses.count - 1)] }
    }

    deinit { stop() }

    /// The requests received so far (same as `requests`).
    public func receivedRequests() -> [Request] { state.requests }

    /// Stops accepting connections: the listening socket is shut down now and closed by the serving thread as it
    /// ends, within 100 ms. Safe to call more than once.
    public func stop() { state.stop() }

    /// A port on 127.0.0.1 that nothing listens on at the moment of the call: bound, read back and closed.
    public static func unusedPort() -> Int {
        guard let fd = try? boundSocket(reuseAddress: false) else { return 9 }
        defer { _ = close(fd) }
        return (try? localPort(of: fd)) ?? 9
    }

    // MARK: Sockets

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// A TCP socket bound to 127.0.0.1 on port 0.
    private static func boundSocket(reuseAddress: Bool) throws -> Int32 {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SocketError(description: "socket() failed: \(errnoText())") }
        if reuseAddress {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(0).bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let reason = errnoText()
            _ = close(fd)
            throw SocketError(description: "bind to 127.0.0.1:0 failed: \(reason)")
        }
        return fd
    }

    /// The local port of a bound socket.
    private static func localPort(of fd: Int32) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw SocketError(description: "getsockname failed: \(errnoText())") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A thread-safe counter for `init(responses:)`.
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock(); defer { lock.unlock() }
            defer { value += 1 }
            return value
        }
    }

    /// What the serving thread shares with the server object, so the thread does not keep the server alive.
    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var listener: Int32
        private var stopped = false
        private var received: [Request] = []
        private let handler: @Sendable (Request) -> Response

        /// Largest header block accepted, in bytes.
        private static let maxHeaderBytes = 64 * 1024

        init(listener: Int32, handler: @escaping @Sendable (Request) -> Response) {
            self.listener = listener
            self.handler = handler
        }

        var requests: [Request] {
            lock.lock(); defer { lock.unlock() }
            return received
        }

        private var isStopped: Bool {
            lock.lock(); defer { lock.unlock() }
            return stopped
        }

        /// Marks the server stopped and shuts the listener down, which on Linux stops it listening at once and
        /// wakes a thread blocked in `poll`. The serving thread closes the socket as it ends (it checks the flag at
        /// least every 100 ms), so the descriptor is never closed under it.
        func stop() {
            lock.lock(); defer { lock.unlock() }
            guard !stopped else { return }
            stopped = true
            // Under the lock, so the serving thread cannot close the descriptor in between.
            if listener >= 0 { _ = shutdown(listener, Int32(SHUT_RDWR)) }
        }

        /// The accept loop: runs until `stop()`, then closes the listening socket.
        func serve() {
            lock.lock()
            let fd = listener
            lock.unlock()
            defer {
                lock.lock()
                listener = -1
                _ = close(fd)
                lock.unlock()
            }
            while !isStopped {
                var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&waiting, 1, 100)
                if ready < 0 && errno != EINTR { return }
                if ready <= 0 || isStopped { continue }
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { continue }
                    return
                }
                handle(client)
            }
        }

        /// Reads one request from `client`, records it, writes the handler's response and closes the connection.
        private func handle(_ client: Int32) {
            defer { _ = close(client) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            #if !os(Linux)
            var one: Int32 = 1
            _ = setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif

            var buffer = Data()
            let separator = Data("\r\n\r\n".utf8)
            var headerEnd: Range<Data.Index>?
            while headerEnd == nil {
                guard buffer.count <= Self.maxHeaderBytes, let chunk = receive(client) else { return }
                buffer.append(chunk)
                headerEnd = buffer.range(of: separator)
            }
            guard let headerEnd else { return }

            let head = String(decoding: buffer[buffer.startIndex..<headerEnd.lowerBound], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true)
            guard requestLine.count >= 2 else { return }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }

            let length = headers["content-length"].flatMap { Int($0) } ?? 0
            if length > 0, headers["expect"]?.lowercased() == "100-continue" {
                guard write(client, Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return }
            }
            var body = Data(buffer[headerEnd.upperBound...])
            while body.count < length {
                guard let chunk = receive(client) else { return }
                body.append(chunk)
            }
            if body.count > length { body = body.prefix(length) }

            let request = Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body)
            lock.lock()
            received.append(request)
            lock.unlock()

            let response = handler(request)
            var text = "HTTP/1.1 \(response.status) \(Self.reasonPhrase(response.status))\r\n"
            for (name, value) in response.headers.sorted(by: { $0.key < $1.key })
            where !["content-length", "connection"].contains(name.lowercased()) {
                text += "\(name): \(value)\r\n"
            }
            text += "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
            var bytes = Data(text.utf8)
            bytes.append(response.body)
            guard write(client, bytes) else { return }
            _ = shutdown(client, Int32(SHUT_WR))
        }

        /// Up to 64 KiB from the socket; nil at end of stream, on error or on the receive timeout.
        private func receive(_ client: Int32) -> Data? {
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if n > 0 { return Data(chunk[0..<n]) }
                if n < 0 && errno == EINTR { continue }
                return nil
            }
        }

        /// Sends all of `data`; false when the peer has gone. SIGPIPE is suppressed.
        private func write(_ client: Int32, _ data: Data) -> Bool {
            #if os(Linux)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            var offset = 0
            let bytes = [UInt8](data)
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + offset, bytes.count - offset, flags) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }

        private static func reasonPhrase(_ status: Int) -> String {
            switch status {
            case 200: "OK"
            case 201: "Created"
            case 204: "No Content"
            case 400: "Bad Request"
            case 401: "Unauthorized"
            case 403: "Forbidden"
            case 404: "Not Found"
            case 429: "Too Many Requests"
            case 500: "Internal Server Error"
            case 502: "Bad Gateway"
            case 503: "Service Unavailable"
            case 504: "Gateway Timeout"
            default: "Status \(status)"
            }
        }
    }
}
