import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import KondateSupport
import KondateTestSupport
@testable import KondateEval

/// A chat-completions reply whose first choice says `content`.
private func completion(_ content: String) -> LocalHTTPServer.Response {
    .json(JSON.object([
        ("id", .string("chatcmpl-test")),
        ("object", .string("chat.completion")),
        ("choices", .array([.object([
            ("index", .int(0)),
            ("message", .object([("role", .string("assistant")), ("content", .string(content))])),
            ("finish_reason", .string("stop")),
        ])])),
    ]).rendered(pretty: false))
}

/// The message of the `JudgeError` that `body` throws; records an issue when it throws nothing or something else.
private func judgeError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        try body()
        Issue.record("expected a JudgeError, got no error", sourceLocation: sourceLocation)
    } catch let error as JudgeError {
        return error.message
    } catch {
        Issue.record("expected a JudgeError, got \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

@Suite("OpenAI-compatible judge")
struct JudgeTests {
    @Test func returnsTheFirstChoiceAndSendsTheDocumentedRequest() throws {
        let server = try LocalHTTPServer(responses: [completion("Rating: [[8]]")])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1/", model: "gpt-judge", apiKey: "sk-test", timeout: 5)

        let answer = try judge.complete(system: "You are a fair judge.", user: "質問: 1+1?\n回答: 2")
        #expect(answer == "Rating: [[8]]")

        let requests = server.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.path == "/v1/chat/completions")
        #expect(request.headers["authorization"] == "Bearer sk-test")
        #expect(request.headers["content-type"]?.hasPrefix("application/json") == true)
        let body = try JSONParser.parse(request.bodyText)
        #expect(body["model"]?.stringValue == "gpt-judge")
        #expect(body["temperature"]?.doubleValue == 0)
        #expect(body["max_tokens"]?.intValue == 2048)
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.count == 2)
        #expect(messages.first?["role"]?.stringValue == "system")
        #expect(messages.first?["content"]?.stringValue == "You are a fair judge.")
        #expect(messages.last?["role"]?.stringValue == "user")
        #expect(messages.last?["content"]?.stringValue == "質問: 1+1?\n回答: 2")
    }

    @Test func sendsNoAuthorizationWithoutAKey() throws {
        let server = try LocalHTTPServer(responses: [completion("ok")])
        defer { server.stop() }
        for key in [nil, ""] as [String?] {
            let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", apiKey: key, timeout: 5)
            #expect(try judge.complete(system: "s", user: "u") == "ok")
        }
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.headers["authorization"] == nil })
    }

    /// A key goes only over https or to a loopback address; plain http elsewhere is refused before any
    /// connection is made.
    @Test func aKeyIsNotSentInClearOverTheNetwork() throws {
        for endpoint in ["http://judge.example.com/v1", "http://10.0.0.5:8000/v1", "http://[2001:db8::1]/v1"] {
            let judge = OpenAICompatibleJudge(endpoint: endpoint, model: "m", apiKey: "sk-secret", timeout: 1, maxAttempts: 1)
            let message = judgeError { try judge.complete(system: "s", user: "u") }
            #expect(message.contains("would cross the network in clear") && !message.contains("sk-secret"), "\(message)")
        }
        for endpoint in ["https://api.openai.com/v1", "http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"] {
            #expect(OpenAICompatibleJudge.refusalToSendKey(to: endpoint) == nil, "\(endpoint)")
        }
    }

    /// A redirect to another origin (here another port) loses the Authorization header; one within the
    /// endpoint's origin keeps it.
    @Test func redirectsToAnotherOriginDropTheKey() throws {
        let other = try LocalHTTPServer(responses: [completion("elsewhere")])
        defer { other.stop() }
        let target = other.baseURL + "/v1/chat/completions"
        let server = try LocalHTTPServer { request in
            if request.path == "/v1/chat/completions" {
                return LocalHTTPServer.Response(status: 307, headers: ["Location": "/same/chat/completions"])
            }
            if request.path == "/same/chat/completions" {
                return LocalHTTPServer.Response(status: 307, headers: ["Location": target])
            }
            return .json("{}", status: 404)
        }
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", apiKey: "sk-secret", timeout: 5, maxAttempts: 1)
        #expect(try judge.complete(system: "s", user: "u") == "elsewhere")
        #expect(server.requests.map(\.path) == ["/v1/chat/completions", "/same/chat/completions"])
        #expect(server.requests.allSatisfy { $0.headers["authorization"] == "Bearer sk-secret" })
        try #require(other.requests.count == 1)
        #expect(other.requests[0].headers["authorization"] == nil, "\(other.requests[0].headers)")
    }

    @Test func retriesAServerErrorHonouringRetryAfter() throws {
        let failure = LocalHTTPServer.Response(status: 500, headers: ["Retry-After": "0"], body: Data("overloaded".utf8))
        let server = try LocalHTTPServer(responses: [failure, completion("second time lucky")])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", timeout: 5, maxAttempts: 2)

        let start = Date()
        #expect(try judge.complete(system: "s", user: "u") == "second time lucky")
        #expect(Date().timeIntervalSince(start) < 1, "Retry-After: 0 means no wait")
        #expect(server.requests.count == 2)
    }

    @Test func givesUpAfterTheLastAttempt() throws {
        let failure = LocalHTTPServer.Response(status: 503, headers: ["Retry-After": "0"], body: Data("try later".utf8))
        let server = try LocalHTTPServer(responses: [failure])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", timeout: 5, maxAttempts: 2)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("\(server.baseURL)/v1/chat/completions"))
        #expect(message.contains("returned HTTP 503: try later"))
        #expect(message.contains("after 2 tries"))
        #expect(server.requests.count == 2)
    }

    @Test func unauthorizedFailsAtOnceWithAHint() throws {
        let server = try LocalHTTPServer(responses: [.json(#"{"error": {"message": "Incorrect API key provided"}}"#, status: 401)])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", apiKey: "sk-wrong", timeout: 5)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("HTTP 401"))
        #expect(message.contains("Incorrect API key provided"))
        #expect(message.contains("judge.api_key_env"))
        #expect(server.requests.count == 1)
    }

    @Test func notFoundFailsAtOnceWithoutTheKeyHint() throws {
        let server = try LocalHTTPServer(responses: [.text("no such route", status: 404)])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL, model: "m", timeout: 5)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("HTTP 404"))
        #expect(message.contains("no such route"))
        #expect(!message.contains("api_key_env"))
        #expect(server.requests.count == 1)
    }

    @Test func aBodyThatIsNotJSONIsQuoted() throws {
        let server = try LocalHTTPServer(responses: [.text("<html>gateway login</html>")])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", timeout: 5)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("not JSON"))
        #expect(message.contains("<html>gateway login</html>"))
    }

    @Test func jsonWithoutContentIsQuoted() throws {
        let server = try LocalHTTPServer(responses: [.json(#"{"choices": []}"#)])
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", timeout: 5)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("choices[0].message.content"))
        #expect(message.contains(#"{"choices": []}"#))
    }

    @Test func anUnusedPortIsUnreachableAtOnce() throws {
        let port = LocalHTTPServer.unusedPort()
        let judge = OpenAICompatibleJudge(endpoint: "http://127.0.0.1:\(port)/v1", model: "m", timeout: 5)

        let start = Date()
        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("http://127.0.0.1:\(port)/v1/chat/completions is unreachable"))
        #expect(Date().timeIntervalSince(start) < 3)
    }

    @Test func aSilentServerTimesOut() throws {
        let server = try LocalHTTPServer { _ in
            Thread.sleep(forTimeInterval: 1)
            return completion("too late")
        }
        defer { server.stop() }
        let judge = OpenAICompatibleJudge(endpoint: server.baseURL + "/v1", model: "m", timeout: 0.3, maxAttempts: 1)

        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("is unreachable: no response within 0.3 s"))
    }

    @Test func retryAfterIsHonouredOnlyAsSecondsUpToThirty() throws {
        func response(_ retryAfter: String?) throws -> HTTPURLResponse {
            try #require(HTTPURLResponse(url: URL(string: "http://127.0.0.1/v1/chat/completions")!, statusCode: 429,
                                         httpVersion: "HTTP/1.1", headerFields: retryAfter.map { ["Retry-After": $0] } ?? [:]))
        }
        #expect(OpenAICompatibleJudge.retryAfter(in: try response("0")) == 0)
        #expect(OpenAICompatibleJudge.retryAfter(in: try response("2")) == 2)
        #expect(OpenAICompatibleJudge.retryAfter(in: try response("30")) == 30)
        #expect(OpenAICompatibleJudge.retryAfter(in: try response("31")) == nil)
        #expect(OpenAICompatibleJudge.retryAfter(in: try response("Wed, 21 Oct 2015 07:28:00 GMT")) == nil)
        #expect(OpenAICompatibleJudge.retryAfter(in: try response(nil)) == nil)
        #expect((1...4).map(OpenAICompatibleJudge.backoff(attempt:)) == [1, 2, 4, 8])
    }

    @Test(arguments: ["ftp://x", "not a url", "", "http://"])
    func anInvalidEndpointIsRejected(endpoint: String) {
        let judge = OpenAICompatibleJudge(endpoint: endpoint, model: "m")
        let message = judgeError { _ = try judge.complete(system: "s", user: "u") }
        #expect(message.contains("'\(endpoint)'"))
        #expect(message.contains("http:// or https://"))
    }
}

@Suite("Judge ratings")
struct JudgeRatingTests {
    @Test func parsesRatings() {
        #expect(JudgeRating.parse("Rating: [[7]]") == 7)
        #expect(JudgeRating.parse("The answer is fine. [[8.5]]") == 8.5)
        #expect(JudgeRating.parse("no rating") == nil)
        #expect(JudgeRating.parse("[[11]]") == nil)
        #expect(JudgeRating.parse("[[0]]") == nil)
        #expect(JudgeRating.parse("first [[3]] then [[9]]") == 3)
        #expect(JudgeRating.parse("Rating: [6]") == 6)
        #expect(JudgeRating.parse("rating:[ 10 ]") == 10)
        #expect(JudgeRating.parse("Rating: [[ 1 ]]") == 1)
    }

    @Test func singleBracketsCountOnlyAfterRating() {
        #expect(JudgeRating.parse("See [6] above.") == nil)
        #expect(JudgeRating.parse("Score [6]") == nil)
        #expect(JudgeRating.parse("Rating: [4] but also [[9]]") == 9)
    }
}
