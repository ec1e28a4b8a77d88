import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KondateSupport

/// Why a judge could not produce a judgment: an unusable endpoint, an unreachable server, an HTTP error
/// or a reply without a message. `message` is a complete sentence fit to show the user.
public struct JudgeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// Something that answers a judge prompt (an HTTP endpoint, or a test double).
public protocol Judge {
    /// The judge's reply to one system prompt and one user message.
    func complete(system: String, user: String) throws -> String
}

/// A judge behind an OpenAI-compatible chat-completions API (OpenAI, vLLM, llama.cpp's server, Ollama…).
///
/// Each `complete` call POSTs
/// `{"model": …, "messages": [{"role": "system", …}, {"role": "user", …}], "temperature": 0, "max_tokens": 2048}`
/// to `endpoint + "/chat/completions"` and returns `choices[0].message.content`. The call blocks until the
/// reply arrives or fails:
/// - a connection that is refused or whose host is not found fails at once; a request that times out is
///   tried again, up to `maxAttempts` tries in all;
/// - HTTP 429 and 5xx are tried again up to `maxAttempts` tries in all, waiting 1 s, 2 s, 4 s… between
///   tries, or the server's `Retry-After` seconds when it sends at most 30;
/// - any other status outside 2xx fails at once, quoting the start of the body.
public struct OpenAICompatibleJudge: Judge, Sendable {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`; one trailing slash is ignored.
    public var endpoint: String
    /// Model name sent with every request.
    public var model: String
    /// Sent as `Authorization: Bearer KEY` when non-nil and non-empty.
    public var apiKey: String?
    /// Seconds to wait for each request.
    public var timeout: Double
    /// Tries per `complete` call for timeouts, HTTP 429 and HTTP 5xx (at least one try is always made).
    public var maxAttempts: Int

    /// Characters of a response body quoted in error messages.
    static let bodyExcerptLength = 300
    /// The longest `Retry-After` honoured, in seconds; longer ones fall back to the usual backoff.
    static let maxRetryAfter: Double = 30

    public init(endpoint: String, model: String, apiKey: String? = nil, timeout: Double = 120, maxAttempts: Int = 3) {
        self.endpoint = endpoint
        self.model = model
        self.apiKey = apiKey
        self.timeout = timeout
        self.maxAttempts = maxAttempts
    }

    /// The full URL requests go to: `endpoint` without one trailing slash, then `/chat/completions`.
    public var completionsURL: String {
        (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/chat/completions"
    }

    /// The request body for one prompt, keys in the order the API documents them.
    func requestBody(system: String, user: String) -> JSON {
        .object([
            ("model", .string(model)),
            ("messages", .array([
                .object([("role", .string("system")), ("content", .string(system))]),
                .object([("role", .string("user")), ("content", .string(user))]),
            ])),
            ("temperature", .int(0)),
            ("max_tokens", .int(2048)),
        ])
    }

    public func complete(system: String, user: String) throws -> String {
        let target = completionsURL
        guard Self.isHTTPURL(endpoint), let url = URL(string: target), Self.isHTTPURL(target) else {
            throw JudgeError("judge endpoint '\(endpoint)' is not a valid URL: it must be http:// or https:// followed by a host")
        }

        if let apiKey, !apiKey.isEmpty, let refusal = Self.refusalToSendKey(to: target) { throw JudgeError(refusal) }

        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.timeoutInterval = timeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let apiKey, !apiKey.isEmpty { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(requestBody(system: system, user: user).rendered(pretty: false).utf8)

        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration, delegate: RedirectGuard(origin: url), delegateQueue: nil)
        defer { session.invalidateAndCancel() }

        let attempts = max(1, maxAttempts)
        for attempt in 1...attempts {
            let isLast = attempt == attempts
            let (data, response, error) = Self.send(request, on: session)

            if let error {
                let timedOut = (error as? URLError)?.code == .timedOut
                if timedOut && !isLast {
                    Thread.sleep(forTimeInterval: Self.backoff(attempt: attempt))
                    continue
                }
                throw JudgeError("judge endpoint \(target) is unreachable: \(Self.reason(for: error, timeout: timeout))")
            }
            guard let http = response as? HTTPURLResponse else {
                throw JudgeError("judge endpoint \(target) gave a reply that is not HTTP")
            }
            let body = data ?? Data()
            let status = http.statusCode

            if (200..<300).contains(status) {
                return try Self.content(of: body, from: target)
            }
            if status == 429 || (500..<600).contains(status) {
                if !isLast {
                    let wait = Self.retryAfter(in: http) ?? Self.backoff(attempt: attempt)
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                    continue
                }
                let tries = attempts == 1 ? "" : " (gave up after \(attempts) tries)"
                throw JudgeError("judge endpoint \(target) returned HTTP \(status): \(Self.excerpt(body))\(tries)")
            }
            var message = "judge endpoint \(target) returned HTTP \(status): \(Self.excerpt(body))"
            if status == 401 || status == 403 {
                let sent = (apiKey ?? "").isEmpty ? "no API key was sent" : "the API key was refused"
                message += " (\(sent); the key is read from the environment variable named by the recipe's judge.api_key_env, OPENAI_API_KEY unless set)"
            }
            throw JudgeError(message)
        }
        // Every pass through the loop returns, continues or throws, and the last one never continues.
        throw JudgeError("judge endpoint \(target) gave no answer")
    }

    /// Why an API key may not go to `url` (`SecretPolicy`), or nil when it may.
    public static func refusalToSendKey(to url: String) -> String? {
        SecretPolicy.refusalToSendKey(to: url).map { "judge endpoint " + $0 }
    }

    /// Follows redirects within the endpoint's origin (scheme, host and port) with the request as it was;
    /// a redirect to another origin loses the `Authorization` header, so a key reaches only the endpoint
    /// the recipe names.
    final class RedirectGuard: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        let origin: (String?, String?, Int?)

        init(origin url: URL) {
            origin = Self.origin(of: url)
        }

        static func origin(of url: URL) -> (String?, String?, Int?) {
            let scheme = url.scheme?.lowercased()
            return (scheme, url.host?.lowercased(), url.port ?? (scheme == "https" ? 443 : 80))
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            var next = request
            if let url = request.url, Self.origin(of: url) != origin {
                next.setValue(nil, forHTTPHeaderField: "Authorization")
            }
            completionHandler(next)
        }
    }

    /// Whether `text` parses as an absolute http or https URL with a host.
    static func isHTTPURL(_ text: String) -> Bool {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else { return false }
        return true
    }

    // MARK: Transport

    /// Carries a data task's outcome out of its completion handler.
    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Data?, URLResponse?, Error?) = (nil, nil, nil)

        func set(_ data: Data?, _ response: URLResponse?, _ error: Error?) {
            lock.lock(); defer { lock.unlock() }
            value = (data, response, error)
        }

        func get() -> (Data?, URLResponse?, Error?) {
            lock.lock(); defer { lock.unlock() }
            return value
        }
    }

    /// Runs one request and waits for its outcome.
    private static func send(_ request: URLRequest, on session: URLSession) -> (Data?, URLResponse?, Error?) {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: request) { data, response, error in
            outcome.set(data, response, error)
            done.signal()
        }
        task.resume()
        done.wait()
        return outcome.get()
    }

    // MARK: Replies

    /// `choices[0].message.content` of a 2xx body.
    static func content(of body: Data, from target: String) throws -> String {
        let text = String(decoding: body, as: UTF8.self)
        let json: JSON
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw JudgeError("judge endpoint \(target) returned a body that is not JSON (\(error)): \(excerpt(body))")
        }
        guard let choice = json["choices"]?.arrayValue?.first,
              let content = choice["message"]?["content"]?.stringValue else {
            throw JudgeError("judge endpoint \(target) returned JSON without choices[0].message.content as a string: \(excerpt(body))")
        }
        return content
    }

    /// The first `bodyExcerptLength` characters of a body, whitespace-trimmed, with `…` when cut.
    static func excerpt(_ body: Data) -> String {
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return "(empty body)" }
        if text.count <= bodyExcerptLength { return text }
        return String(text.prefix(bodyExcerptLength)) + "…"
    }

    /// Seconds to wait after failed try number `attempt` (1-based): 1, 2, 4, 8…
    static func backoff(attempt: Int) -> Double {
        Double(1 << min(max(attempt - 1, 0), 16))
    }

    /// The `Retry-After` header as seconds, when it is a number from 0 to `maxRetryAfter`; nil otherwise
    /// (absent, an HTTP date, or too long).
    static func retryAfter(in response: HTTPURLResponse) -> Double? {
        guard let raw = response.allHeaderFields.first(where: { ($0.key as? String)?.lowercased() == "retry-after" })?.value as? String,
              let seconds = Double(raw.trimmingCharacters(in: .whitespaces)), seconds.isFinite,
              seconds >= 0, seconds <= maxRetryAfter else { return nil }
        return seconds
    }

    /// A short, readable cause for a transport failure.
    static func reason(for error: Error, timeout: Double) -> String {
        guard let urlError = error as? URLError else { return error.localizedDescription }
        switch urlError.code {
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .timedOut:
            let seconds = timeout == timeout.rounded() && abs(timeout) < 1e9 ? String(Int(timeout)) : String(timeout)
            return "no response within \(seconds) s"
        case .notConnectedToInternet: return "no network connection"
        case .networkConnectionLost: return "the connection was closed before a reply"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            return "TLS failed (\(urlError.localizedDescription))"
        default: return "\(urlError.localizedDescription) (URL error \(urlError.code.rawValue))"
        }
    }
}

/// Reads the score out of a judge's reply.
public enum JudgeRating {
    /// The rating in `[[x]]` form (x an integer or decimal, e.g. "Rating: [[7]]" or "[[8.5]]"); the first such
    /// match; nil when none. When no `[[x]]` appears, a single-bracket `[x]` is accepted only directly after
    /// "Rating:" (any case, spaces allowed), e.g. "Rating: [6]". Ratings outside 1...10 → nil.
    public static func parse(_ judgment: String) -> Double? {
        let value: Substring
        if let match = judgment.firstMatch(of: #/\[\[\s*(\d+(?:\.\d+)?)\s*\]\]/#) {
            value = match.output.1
        } else if let match = judgment.firstMatch(of: #/(?i)rating:\s*\[\s*(\d+(?:\.\d+)?)\s*\]/#) {
            value = match.output.1
        } else {
            return nil
        }
        guard let rating = Double(value), (1...10).contains(rating) else { return nil }
        return rating
    }
}
