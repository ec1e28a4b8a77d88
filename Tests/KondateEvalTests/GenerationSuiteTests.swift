import Foundation
import KondateSupport
import Testing
@testable import KondateEval

/// A judge that answers from a script and records the prompts.
final class ScriptedJudge: Judge, @unchecked Sendable {
    var prompts: [(system: String, user: String)] = []
    let reply: (Int) -> String
    init(reply: @escaping (Int) -> String) { self.reply = reply }
    func complete(system: String, user: String) throws -> String {
        prompts.append((system, user))
        return reply(prompts.count)
    }
}

@Suite("generation suites (MT-Bench / Vicuna-QA format)")
struct GenerationSuiteTests {
    static let questions = """
    {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now in Japanese."]}

    {"question_id": "q2", "category": "math", "turns": ["1+1?"], "reference": ["2"]}
    {"text": "日本の首都は？", "category": "generic"}
    """

    @Test func parsesBothLayouts() throws {
        let q = try GenerationSuite.parse(Self.questions, file: "q.jsonl")
        #expect(q.count == 3)
        #expect(q[0].id == .int(81) && q[0].turns == ["Write a haiku.", "Now in Japanese."] && q[0].category == "writing" && q[0].line == 1)
        #expect(q[1].id == .string("q2") && q[1].reference == ["2"] && q[1].line == 3)
        #expect(q[2].id == .int(4) && q[2].turns == ["日本の首都は？"])
    }

    @Test(arguments: [
        ("{\"question_id\": 1}", "q.jsonl:1: missing field 'turns'"),
        ("{\"turns\": []}", "q.jsonl:1: turns: expected a non-empty list of strings"),
        ("{\"turns\": [\"a\", 3]}", "q.jsonl:1: turns[1]: expected a string, found a number"),
        ("{\"turns\": [\"a\"], \"question_id\": [1]}", "q.jsonl:1: question_id: expected a number or a string"),
        ("{\"turns\": [\"a\"], \"question_id\": 1}\n{\"turns\": [\"b\"], \"question_id\": 1}", "q.jsonl:2: duplicate question_id 1 (first on line 1)"),
        ("{\"turns\": [\"a\"]\n", "q.jsonl:1: invalid JSON"),
        ("[1, 2]", "q.jsonl:1: expected an object"),
        ("{\"turns\": [\"a\"], \"reference\": \"x\"}", "q.jsonl:1: reference: expected a list of strings"),
        ("\n\n", "q.jsonl: the question file holds no questions"),
    ])
    func reportsBadQuestions(text: String, message: String) {
        #expect {
            _ = try GenerationSuite.parse(text, file: "q.jsonl")
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }

    @Test func answersTurnByTurnWithTheConversationSoFar() throws {
        let q = try GenerationSuite.parse(Self.questions, file: "q.jsonl")
        var calls: [([String], [String])] = []
        let answers = GenerationSuite.answer(q, maxQuestions: 2) { users, earlier in
            calls.append((users, earlier))
            return "A\(calls.count)"
        }
        #expect(answers.count == 2)
        #expect(calls.map(\.0) == [["Write a haiku."], ["Write a haiku.", "Now in Japanese."], ["1+1?"]])
        #expect(calls.map(\.1) == [[], ["A1"], []])
        #expect(answers[0].answers == ["A1", "A2"] && answers[1].answers == ["A3"])
        let lines = GenerationSuite.answersJSONL(answers, modelID: "qa").split(separator: "\n")
        #expect(lines.first == #"{"question_id":81,"category":"writing","model_id":"qa","choices":[{"index":0,"turns":["A1","A2"]}]}"#)
        #expect(lines.last == #"{"question_id":"q2","category":"math","model_id":"qa","choices":[{"index":0,"turns":["A3"]}]}"#)
    }

    @Test func judgesEveryTurnAndAveragesTheRatings() throws {
        let q = try GenerationSuite.parse(Self.questions, file: "q.jsonl")
        var answers = GenerationSuite.answer(q) { users, _ in "answer to \(users.last!)" }
        // Ratings 8, 6, then no rating, then 3.
        let judge = ScriptedJudge { n in ["Fine. Rating: [[8]]", "Weaker. Rating: [[6]]", "I cannot rate this.", "Rating: [[3]]"][n - 1] }
        try GenerationSuite.judge(&answers, judge: judge)
        #expect(judge.prompts.count == 4)
        #expect(judge.prompts[0].system == GenerationSuite.judgeSystem)
        let second = judge.prompts[1].user
        #expect(second.contains("### User:\nWrite a haiku.\n### Assistant:\nanswer to Write a haiku.\n### User:\nNow in Japanese."))
        #expect(second.contains("rate only the last answer") && second.contains("[[5]]"))
        #expect(judge.prompts[2].user.contains("[Reference answer]\n2") && !judge.prompts[0].user.contains("[Reference answer]"))
        #expect(answers[0].judgments.map(\.score) == [8.0, 6.0])
        #expect(answers[1].judgments.map(\.score) == [nil])

        let scores = GenerationScores(answers)
        #expect(scores.questions == 3)
        #expect(scores.judged == 4)
        #expect(scores.unrated == 1)
        let expectedMean: Double = 17.0 / 3
        #expect(scores.mean == expectedMean)
        #expect(scores.perTurn.map(\.turn) == [1, 2])
        #expect(scores.perTurn.map(\.mean) == [5.5, 6.0])
        #expect(scores.perCategory.map(\.category) == ["writing", "generic"])
        let judgments = GenerationSuite.judgmentsJSONL(answers, modelID: "qa", judgeModel: "gpt-4").split(separator: "\n")
        #expect(judgments.count == 4)
        #expect(judgments[2].contains(#""turn":1,"score":null"#) && judgments[0].contains(#""judge":["gpt-4","single"]"#))
    }

    @Test func aFailingJudgeKeepsTheAnswers() throws {
        struct Down: Judge {
            func complete(system: String, user: String) throws -> String { throw JudgeError("judge endpoint x is unreachable: connection refused") }
        }
        let q = try GenerationSuite.parse(Self.questions, file: "q.jsonl")
        var answers = GenerationSuite.answer(q) { _, _ in "a" }
        #expect(throws: JudgeError.self) { try GenerationSuite.judge(&answers, judge: Down()) }
        #expect(answers.count == 3 && answers.allSatisfy { $0.judgments.isEmpty })
        #expect(GenerationScores(answers).mean == nil)
    }
}
