import Foundation
import KondateRecipe
import KondateSupport

/// The live progress line of a training stage: `pretrain 37/200  loss 3.2100  12,345 tokens/s  ETA 0:42`
/// (tokens and seconds since this process started the stage, so a resumed stage estimates from its
/// own pace).
public enum ProgressText {
    /// `stepsThisRun` steps took `seconds` and trained `tokens` tokens in this process.
    public static func line(stage: String, step: Int, total: Int, loss: Double, stepsThisRun: Int, tokens: Int, seconds: Double) -> String {
        let rate = Double(tokens) / max(seconds, 1e-9)
        let left = seconds / Double(max(1, stepsThisRun)) * Double(max(0, total - step))
        return "\(stage) \(step)/\(total)  loss \(Format.fixed(loss, 4))  \(Format.grouped(Int(rate))) tokens/s  ETA \(clock(left))"
    }

    /// h:mm:ss or m:ss.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let (h, m, r) = (s / 3600, s / 60 % 60, s % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, r) : String(format: "%d:%02d", m, r)
    }
}

/// Append-only JSON-lines metrics, flushed per line. On resume, lines after the checkpoint's step are
/// dropped so the file describes one consistent run.
final class MetricsLog {
    let handle: FileHandle
    /// The same scalars for TensorBoard, in the stage directory (`events.out.tfevents.*`).
    let events: TensorBoardWriter?

    /// `tensorboard`: the directory for the event file (nil: none).
    init(path: String, truncateAfterStep: Int?, tensorboard: String? = nil) throws {
        if let step = truncateAfterStep, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let kept = text.split(separator: "\n").filter { line in
                (try? JSONParser.parse(String(line)))?["step"]?.intValue.map { $0 <= step } ?? false
            }
            try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: path)
        }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw KondateError(.disk, "cannot write \(path)") }
        handle = h
        handle.seekToEndOfFile()
        events = try tensorboard.map { try TensorBoardWriter(directory: $0) }
    }

    deinit {
        try? handle.close()
        try? events?.close()
    }

    /// Appends one line; with TensorBoard, every number of it except `step` becomes the scalar
    /// `train/<key>` (`eval/<key>` for held-out losses) at that step.
    func append(_ object: JSON) throws {
        try handle.write(contentsOf: Data((object.rendered(pretty: false) + "\n").utf8))
        guard let events, case let .object(entries) = object, let step = object["step"]?.intValue else { return }
        for (key, value) in entries where key != "step" {
            guard let number = value.doubleValue, !(value.boolValue != nil) else { continue }
            try events.addScalar(tag: (key.hasPrefix("held_out") ? "eval/" : "train/") + key, value: number, step: step)
        }
    }
}
