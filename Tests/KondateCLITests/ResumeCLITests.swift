import Foundation
import KondateSupport
import KondateTestSupport
import Testing

/// A training stage stopped mid-way (by SIGINT, or by `KONDATE_STOP_AFTER_STEP`, the testing stand-in
/// that stops at a chosen step) leaves a checkpoint at that step, and running the same command again
/// ends with the weights an uninterrupted run gives, bit for bit.
@Suite("kondate run: stop and resume", .serialized)
struct ResumeCLITests {
    static let recipe = "examples/tiny/tiny-llama.yaml"

    /// The tiny example cut down, with dropout: 8 pretraining steps on sequences of 64 tokens, a tune stage of 5 steps
    /// (rows of 256 tokens: the examples are longer than 64); checkpoints only at the end (and where a
    /// stop asks for one).
    static func arguments(_ out: String, until: String) -> [String] {
        ["run", recipe, "--out", out, "--threads", "2", "--until", until, "--set", "model.seq_len=64", "--set", "model.max_positions=256",
         "--set", "tune.qa.max_length=256", "--set", "pretrain.steps=8", "--set", "pretrain.checkpoint.every=100", "--set", "pretrain.log_interval=4",
         "--set", "pretrain.eval_interval=100", "--set", "tune.qa.epochs=0.2", "--set", "tune.qa.checkpoint.every=100",
         // Dropout masks follow from the seed, the step and the row, so a resumed run draws the same ones.
         "--set", "model.dropout=0.1", "--set", "model.attention_dropout=0.1"]
    }

    /// `kondate(_:)` with extra environment variables for the child only (other suites run in parallel:
    /// the test process's own environment stays untouched).
    static func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Result {
        var environment: [String: String?] = ["KONDATE_STOP_AFTER_STEP": nil]
        for (key, value) in extra { environment[key] = value }
        return try runProcess(binary, arguments, environment: environment)
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func checkpoints(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("step_") }.sorted()
    }

    static func metricSteps(_ dir: String) throws -> [Int] {
        try String(contentsOfFile: dir + "/tune/qa/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try #require(try RuntimeCLITests.json(String($0))["step"]?.intValue) }
    }

    /// One test, so that the reference run and the stopped run's pretraining serve every part:
    /// (a) pretraining stopped after step 5 and resumed; (b) the tune stage stopped after its step 3,
    /// resumed, stopped at its last step and completed; (c) the tune metrics hold one line per step.
    @Test func stoppedStagesResumeToTheWeightsOfAnUninterruptedRun() throws {
        let reference = RuntimeCLITests.temporaryDirectory(), stopped = RuntimeCLITests.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: reference)
            try? FileManager.default.removeItem(atPath: stopped)
        }
        let whole = try Self.run(Self.arguments(reference, until: "tune"))
        #expect(whole.status == 0, "\(whole.stderr)")
        let pretrained = try Self.bytes(reference + "/pretrain/model/model.safetensors")
        let tuned = try Self.bytes(reference + "/tune/qa/model/model.safetensors")
        let summary = try RuntimeCLITests.json(try String(contentsOfFile: reference + "/tune/qa/summary.json", encoding: .utf8))
        let steps = try #require(summary["steps"]?.intValue)
        try #require(steps > 4, "the test needs a tune stage of more than 4 steps")
        let last = String(format: "step_%08d", steps)
        #expect(Self.checkpoints(reference + "/tune/qa/checkpoints") == [last])
        #expect(try Self.metricSteps(reference) == Array(1...steps))

        // (a) Pretraining stopped after step 5 leaves a checkpoint there and no model; run again, it resumes.
        let pretrainStop = try Self.run(Self.arguments(stopped, until: "pretrain"), environment: ["KONDATE_STOP_AFTER_STEP": "pretrain:5"])
        #expect(pretrainStop.status != 0)
        #expect(pretrainStop.stderr.contains("pretrain: stopped by KONDATE_STOP_AFTER_STEP after step 5; checkpoint "), "\(pretrainStop.stderr)")
        #expect(pretrainStop.stderr.contains("step_00000005; run the same command again to resume"), "\(pretrainStop.stderr)")
        #expect(Self.checkpoints(stopped + "/pretrain/checkpoints") == ["step_00000005"])
        #expect(!FileManager.default.fileExists(atPath: stopped + "/pretrain/model/model.safetensors"))
        let pretrainResume = try Self.run(Self.arguments(stopped, until: "pretrain"))
        #expect(pretrainResume.status == 0, "\(pretrainResume.stderr)")
        #expect(pretrainResume.stderr.contains("pretrain: resuming from") && pretrainResume.stderr.contains("step_00000005"), "\(pretrainResume.stderr)")
        #expect(try Self.bytes(stopped + "/pretrain/model/model.safetensors") == pretrained)

        // (b) The tune stage stopped after its step 3 (pretraining is done: `tune.qa:3` does not stop it).
        let tuneStop = try Self.run(Self.arguments(stopped, until: "tune"), environment: ["KONDATE_STOP_AFTER_STEP": "tune.qa:3"])
        #expect(tuneStop.status != 0)
        #expect(tuneStop.stderr.contains("tune.qa: stopped by KONDATE_STOP_AFTER_STEP after step 3; checkpoint "), "\(tuneStop.stderr)")
        #expect(Self.checkpoints(stopped + "/tune/qa/checkpoints") == ["step_00000003"])
        #expect(!FileManager.default.fileExists(atPath: stopped + "/tune/qa/model/model.safetensors"))
        #expect(try Self.metricSteps(stopped) == [1, 2, 3])

        // Resumed from step 3 and stopped again at the last step: the checkpoint is written, the model not yet.
        let atEnd = try Self.run(Self.arguments(stopped, until: "tune"), environment: ["KONDATE_STOP_AFTER_STEP": "tune.qa:\(steps)"])
        #expect(atEnd.status != 0)
        #expect(atEnd.stderr.contains("tune.qa: resuming from") && atEnd.stderr.contains("step_00000003"), "\(atEnd.stderr)")
        #expect(atEnd.stderr.contains("tune.qa: stopped by KONDATE_STOP_AFTER_STEP after step \(steps)"), "\(atEnd.stderr)")
        #expect(Self.checkpoints(stopped + "/tune/qa/checkpoints") == ["step_00000003", last])
        #expect(try Self.metricSteps(stopped) == Array(1...steps))

        // Run again: already complete, so it only exports; the weights are the uninterrupted run's.
        let complete = try Self.run(Self.arguments(stopped, until: "tune"))
        #expect(complete.status == 0, "\(complete.stderr)")
        #expect(complete.stderr.contains("tune.qa: already complete"), "\(complete.stderr)")
        #expect(try Self.bytes(stopped + "/tune/qa/model/model.safetensors") == tuned)
        let resumed = try RuntimeCLITests.json(try String(contentsOfFile: stopped + "/tune/qa/summary.json", encoding: .utf8))
        #expect(resumed["resumed_from"]?.intValue == steps)
        #expect(resumed["trained_tokens"]?.intValue == summary["trained_tokens"]?.intValue)
        #expect(resumed["first_loss"]?.doubleValue == summary["first_loss"]?.doubleValue)
        #expect(resumed["final_loss"]?.doubleValue == summary["final_loss"]?.doubleValue)

        // (c) One metrics line per step, 1…N in order.
        #expect(try Self.metricSteps(stopped) == Array(1...steps))
    }

    /// A real SIGINT (what Ctrl-C sends): the stage stops after the step in progress with a checkpoint
    /// there and exit status 130. (That a second SIGINT while the stop is pending ends the process at
    /// once is not tested here: whether it arrives before the step ends depends on the machine's speed.)
    @Test func sigintStopsAfterTheCurrentStep() throws {
        let out = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let arguments = ["run", Self.recipe, "--out", out, "--threads", "2", "--until", "pretrain", "--set", "model.seq_len=64",
                         "--set", "pretrain.steps=200", "--set", "pretrain.checkpoint.every=1000", "--set", "pretrain.log_interval=1",
                         "--set", "pretrain.eval_interval=1000"]

        /// Starts the run, waits for `marker` on stderr, sends SIGINT `count` times, and returns the status and stderr.
        func interrupted(after marker: String, count: Int) throws -> (status: Int32, signalled: Bool, stderr: String) {
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            process.currentDirectoryURL = root
            var env = ProcessInfo.processInfo.environment
            env["KONDATE_STOP_AFTER_STEP"] = nil
            process.environment = env
            let err = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let pid = process.processIdentifier
            // If the signal were ignored, the run would go on for minutes: end it (and fail) instead.
            DispatchQueue.global().asyncAfter(deadline: .now() + 240) { if process.isRunning { kill(pid, SIGKILL) } }
            var text = ""
            while !text.contains(marker) {
                let data = err.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            for i in 0..<count {
                // Not while the first is still pending (pending signals merge), but well within the step
                // in progress (over a second in a debug build).
                if i > 0 { usleep(100_000) }
                process.interrupt()
            }
            text += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, process.terminationReason == .uncaughtSignal, text)
        }

        let first = try interrupted(after: "pretrain: step 2/200", count: 1)
        #expect(first.status == 130 && !first.signalled, "\(first.stderr)")
        let stop = try #require(first.stderr.range(of: "pretrain: stopped by SIGINT after step "), "\(first.stderr)")
        let step = try #require(Int(first.stderr[stop.upperBound...].prefix { $0.isNumber }))
        #expect(step >= 2)
        #expect(first.stderr.contains("run the same command again to resume"))
        let checkpoint = String(format: "step_%08d", step)
        #expect(Self.checkpoints(out + "/pretrain/checkpoints") == [checkpoint])
    }
}
