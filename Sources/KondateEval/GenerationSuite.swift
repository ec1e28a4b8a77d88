import Foundation
import KondateSupport

/// One question of a generation suite (MT-Bench / Vicuna-QA style): one or more user turns, answered
/// in order, each answer seeing the conversation so far.
public struct GenerationQuestion: Sendable, Equatable {
    /// The file's `question_id` (a number or a string), kept as given for the answer files.
    public var id: JSON
    public var category: String?
    /// The user turns.
    public var turns: [String]
    /// Reference answers per turn (MT-Bench's `reference` for math, reasoning and coding), shown to the judge.
    public var reference: [String]?
    /// The line of the question file it came from (1-based).
    public var line: Int

    public init(id: JSON, category: String?, turns: [String], reference: [String]? = nil, line: Int) {
        self.id = id
        self.category = category
        self.turns = turns
        self.reference = reference
        self.line = line
    }
}

/// One question answered, and, when a judge ran, one judgment per turn.
public struct GenerationAnswer: Sendable, Equatable {
    public var question: GenerationQuestion
    /// The assistant's answer to each turn.
    public var answers: [String]
    public var judgments: [Judgment]

    public init(question: GenerationQuestion, answers: [String], judgments: [Judgment] = []) {
        self.question = question
        self.answers = answers
        self.judgments = judgments
    }
}

/// A judge's verdict on one turn of one answer.
public struct Judgment: Sendable, Equatable {
    /// 1-based turn.
    public var turn: Int
    /// The `[[rating]]` of the judgment (1–10), nil when the judge gave none.
    public var score: Double?
    /// The judge's full reply.
    public var text: String
}

/// Generation suites in the format of FastChat's MT-Bench `question.jsonl`, which the Japanese MT-Bench
/// and the Japanese Vicuna-QA benchmark also use:
///
/// - one JSON object per line, blank lines skipped;
/// - `turns`: a list of user turns (strings) — or `text`, a single turn (the original Vicuna-QA layout);
/// - `question_id`: a number or a string (default: the line number);
/// - optional `category` (a string) and `reference` (a list of strings, one per turn, shown to the judge).
///
/// Answers are written in FastChat's `model_answer` layout (`question_id`, `model_id`, `choices` with one
/// entry holding `turns`), plus `category`; judgments in the layout of its single-answer grading
/// (`question_id`, `model`, `judge`, `turn`, `score`, `judgment`). No time stamps are written, so the same
/// model and suite give identical files.
public enum GenerationSuite {
    /// Reads a question file; a malformed line is an error naming the file, the line and the field.
    public static func load(path: String) throws(EvalError) -> [GenerationQuestion] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvalError(file: path, message: "cannot read the question file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw EvalError(file: path, message: "the question file is not UTF-8") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(EvalError) -> [GenerationQuestion] {
        var questions = [GenerationQuestion]()
        var seen = [String: Int]()
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = i + 1
            let s = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if s.allSatisfy(\.isWhitespace) { continue }
            func fail(_ message: String) -> EvalError { EvalError(file: file, line: line, message: message) }
            let object: JSON
            do { object = try JSONParser.parse(String(s)) } catch { throw fail("invalid JSON: \(error)") }
            guard case .object = object else {
                throw fail("expected an object with question_id and turns (or text), found \(EvalDataset.kind(object))")
            }
            var turns = [String]()
            if let value = object["turns"] {
                guard let items = value.arrayValue, !items.isEmpty else {
                    throw fail("turns: expected a non-empty list of strings, found \(EvalDataset.kind(value))")
                }
                for (t, item) in items.enumerated() {
                    guard let turn = item.stringValue else { throw fail("turns[\(t)]: expected a string, found \(EvalDataset.kind(item))") }
                    turns.append(turn)
                }
            } else if let value = object["text"] {
                guard let turn = value.stringValue else { throw fail("text: expected a string, found \(EvalDataset.kind(value))") }
                turns = [turn]
            } else {
                throw fail("missing field 'turns' (a list of user turns) or 'text' (one turn)")
            }
            let id: JSON
            switch object["question_id"] {
            case nil: id = .int(line)
            case let value? where value.intValue != nil || value.stringValue != nil: id = value
            case let value?: throw fail("question_id: expected a number or a string, found \(EvalDataset.kind(value))")
            }
            let key = id.rendered(pretty: false)
            if let first = seen[key] { throw fail("duplicate question_id \(key) (first on line \(first))") }
            seen[key] = line
            var category: String?
            if let value = object["category"] {
                guard let c = value.stringValue else { throw fail("category: expected a string, found \(EvalDataset.kind(value))") }
                category = c
            }
            var reference: [String]?
            if let value = object["reference"], value != .null {
                guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw fail("reference: expected a list of strings (one per turn), found \(EvalDataset.kind(value))")
                }
                reference = items.compactMap(\.stringValue)
            }
            questions.append(GenerationQuestion(id: id, category: category, turns: turns, reference: reference, line: line))
        }
        guard !questions.isEmpty else { throw EvalError(file: file, message: "the question file holds no questions") }
        return questions
    }

    /// Answers every question in order. `respond` gets the user turns so far and the earlier answers
    /// (one fewer) and returns the next answer.
    public static func answer(_ questions: [GenerationQuestion], maxQuestions: Int? = nil,
                              respond: (_ userTurns: [String], _ earlierAnswers: [String]) throws -> String,
                              progress: ((Int, Int) -> Void)? = nil) rethrows -> [GenerationAnswer] {
        let selected = maxQuestions.map { Array(questions.prefix(max(0, $0))) } ?? questions
        var answers = [GenerationAnswer]()
        for (n, question) in selected.enumerated() {
            progress?(n + 1, selected.count)
            var replies = [String]()
            for t in question.turns.indices {
                replies.append(try respond(Array(question.turns[...t]), replies))
            }
            answers.append(GenerationAnswer(question: question, answers: replies))
        }
        return answers
    }

    // MARK: Judging

    /// The judge's system message.
    public static let judgeSystem = "You are an impartial judge of the answers an AI assistant gives to users."

    /// The judge prompt for turn `turn` (1-based) of `answer`: the conversation up to that turn, the
    /// reference answer for the turn when the question has one, and the instruction to end with
    /// `Rating: [[n]]`, n from 1 to 10 (the `[[rating]]` convention of MT-Bench's single-answer grading).
    public static func judgePrompt(_ answer: GenerationAnswer, turn: Int) -> String {
        let q = answer.question
        let hasReference = q.reference.map { $0.count >= turn } ?? false
        var text = "Evaluate the assistant's answer to the user's last question in the conversation below. " +
            "Judge how helpful, relevant, accurate, deep and detailed it is" +
            (hasReference ? ", and compare it with the reference answer, which is correct" : "") +
            "; an answer in a language other than the question's is a poor answer. " +
            (turn > 1 ? "Earlier turns are context: rate only the last answer. " : "") +
            "Explain your assessment in a few sentences, then rate the answer from 1 to 10 in exactly this form: \"Rating: [[5]]\".\n\n" +
            "[Conversation]"
        for t in 0..<turn {
            text += "\n### User:\n" + q.turns[t] + "\n### Assistant:\n" + answer.answers[t]
        }
        if hasReference, let reference = q.reference {
            text += "\n\n[Reference answer]\n" + reference[turn - 1]
        }
        return text + "\n[End of conversation]"
    }

    /// Asks the judge about every turn of every answer, in order. The first error of the judge stops
    /// the judging and propagates (answers stay as they are).
    public static func judge(_ answers: inout [GenerationAnswer], judge: any Judge, progress: ((Int, Int) -> Void)? = nil) throws {
        for i in answers.indices {
            progress?(i + 1, answers.count)
            var judgments = [Judgment]()
            for turn in 1...answers[i].answers.count {
                let reply = try judge.complete(system: judgeSystem, user: judgePrompt(answers[i], turn: turn))
                judgments.append(Judgment(turn: turn, score: JudgeRating.parse(reply), text: reply))
            }
            answers[i].judgments = judgments
        }
    }

    // MARK: Files

    /// FastChat `model_answer` lines.
    public static func answersJSONL(_ answers: [GenerationAnswer], modelID: String) -> String {
        answers.map { a in
            JSON.object([("question_id", a.question.id), ("category", a.question.category.map(JSON.string) ?? .null),
                         ("model_id", .string(modelID)),
                         ("choices", .array([.object([("index", .int(0)), ("turns", .array(a.answers.map(JSON.string)))])]))])
                .rendered(pretty: false) + "\n"
        }.joined()
    }

    /// Single-answer grading lines, one per judged turn.
    public static func judgmentsJSONL(_ answers: [GenerationAnswer], modelID: String, judgeModel: String) -> String {
        answers.flatMap { a in
            a.judgments.map { j in
                JSON.object([("question_id", a.question.id), ("category", a.question.category.map(JSON.string) ?? .null),
                             ("model", .string(modelID)), ("judge", .array([.string(judgeModel), .string("single")])),
                             ("turn", .int(j.turn)), ("score", j.score.map(JSON.double) ?? .null), ("judgment", .string(j.text))])
                    .rendered(pretty: false) + "\n"
            }
        }.joined()
    }
}

/// The scores of a judged generation suite: the mean rating over all rated turns, per turn and per
/// category; turns the judge did not rate (no `[[n]]`) are counted and left out of the means.
public struct GenerationScores: Sendable, Equatable {
    public var questions: Int
    public var judged: Int
    public var unrated: Int
    public var mean: Double?
    /// Mean per turn number (1-based), in order.
    public var perTurn: [(turn: Int, mean: Double)]
    /// Mean per category, in order of first appearance.
    public var perCategory: [(category: String, mean: Double)]

    public static func == (a: GenerationScores, b: GenerationScores) -> Bool {
        a.questions == b.questions && a.judged == b.judged && a.unrated == b.unrated && a.mean == b.mean &&
            a.perTurn.elementsEqual(b.perTurn, by: { $0 == $1 }) && a.perCategory.elementsEqual(b.perCategory, by: { $0 == $1 })
    }

    public init(_ answers: [GenerationAnswer]) {
        questions = answers.count
        let all = answers.flatMap { a in a.judgments.map { (a.question.category ?? "uncategorised", $0) } }
        judged = all.count
        unrated = all.filter { $0.1.score == nil }.count
        let rated = all.compactMap { c, j in j.score.map { (c, j.turn, $0) } }
        func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
        self.mean = mean(rated.map(\.2))
        perTurn = Set(rated.map(\.1)).sorted().compactMap { t in mean(rated.filter { $0.1 == t }.map(\.2)).map { (t, $0) } }
        var categories = [String]()
        for (c, _, _) in rated where !categories.contains(c) { categories.append(c) }
        perCategory = categories.compactMap { c in mean(rated.filter { $0.0 == c }.map(\.2)).map { (c, $0) } }
    }

    public var json: JSON {
        .object([("questions", .int(questions)), ("judged_turns", .int(judged)), ("unrated_turns", .int(unrated)),
                 ("judge_score", mean.map(JSON.double) ?? .null),
                 ("turns", .object(perTurn.map { ("\($0.turn)", .double($0.mean)) })),
                 ("categories", .object(perCategory.map { ($0.category, .double($0.mean)) }))])
    }
}
