import Foundation
import KondateSupport

// MARK: - Reading a run directory

/// The parts of a run directory that `kondate report` shows, read without interpreting the recipe:
///
/// - `manifest.json` (required): recipe name and hash, Kondate version and commit, environment, seed,
///   layout, stages with their keys, statuses and summaries;
/// - `pretrain/metrics.jsonl`: training lines (`step`, `loss`, `lr`, `tokens_per_second`, …) and
///   held-out lines (`step`, `held_out_loss`);
/// - `tune/<name>/metrics.jsonl` for each tune stage;
/// - `corpus/mix/mixture.json`: requested and realised shares, drawn tokens and epochs per source;
/// - `eval/<suite>/summary.json` for each eval suite.
///
/// Everything but the manifest is optional: a run stopped with `--until`, or a file that cannot be read,
/// leaves its field empty and, for unreadable files, a line in `problems`.
public struct ReportedRun: Sendable {
    /// The directory as given on the command line.
    public var path: String
    /// The directory's last path component, used to name the run in legends and tables.
    public var name: String
    public var manifest: JSON
    public var pretrain: MetricsRecords?
    /// Tune stages in manifest order, then any further `tune/` directories in name order.
    public var tunes: [(name: String, log: MetricsRecords)]
    public var mixture: JSON?
    /// Eval suites in manifest order, then any further `eval/` directories in name order.
    public var evalSuites: [(name: String, summary: JSON)]
    /// Files that exist but could not be read or parsed, one line each.
    public var problems: [String]

    public var recipeName: String { manifest["recipe"]?["name"]?.stringValue ?? "(unnamed recipe)" }

    /// The manifest's stages (an empty array when the field is missing).
    public var stages: [JSON] { manifest["stages"]?.arrayValue ?? [] }

    /// Why a directory cannot be reported on.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads the run directory at `path`. Throws when it does not exist, is not a directory, or has no
    /// readable `manifest.json`; every other file is optional.
    public static func load(_ path: String) throws(Failure) -> ReportedRun {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure(description: "\(path): no such run directory")
        }
        guard isDirectory.boolValue else { throw Failure(description: "\(path): not a directory") }
        let manifestPath = path + "/manifest.json"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw Failure(description: "\(path): no manifest.json; not a run directory written by `kondate run`")
        }
        guard let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) else {
            throw Failure(description: "\(manifestPath): cannot be read as UTF-8 text")
        }
        let manifest: JSON
        do { manifest = try JSONParser.parse(text) } catch {
            throw Failure(description: "\(manifestPath): not valid JSON: \(error)")
        }
        guard case .object = manifest else { throw Failure(description: "\(manifestPath): not a JSON object") }

        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var run = ReportedRun(path: path, name: URL(fileURLWithPath: trimmed).standardizedFileURL.lastPathComponent,
                              manifest: manifest, pretrain: nil, tunes: [], mixture: nil, evalSuites: [], problems: [])
        run.pretrain = run.metrics(at: "pretrain/metrics.jsonl")
        for name in run.stageNames(kind: "tune", directory: "tune") {
            if let log = run.metrics(at: "tune/\(name)/metrics.jsonl") { run.tunes.append((name, log)) }
        }
        run.mixture = run.object(at: "corpus/mix/mixture.json")
        for name in run.stageNames(kind: "eval", directory: "eval") {
            if let summary = run.object(at: "eval/\(name)/summary.json") { run.evalSuites.append((name, summary)) }
        }
        return run
    }

    /// Names of the tune stages or eval suites: the second component of the manifest's stage ids of
    /// `kind` (`tune.qa` → `qa`, `eval.tasks.pretrain` → `tasks`), then subdirectories of `directory`
    /// not already named.
    private func stageNames(kind: String, directory: String) -> [String] {
        var names: [String] = []
        for stage in stages where stage["kind"]?.stringValue == kind {
            guard let id = stage["id"]?.stringValue else { continue }
            let parts = id.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count >= 2, !names.contains(String(parts[1])) { names.append(String(parts[1])) }
        }
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: path + "/" + directory)) ?? []
        for entry in listed.sorted() where !names.contains(entry) && !entry.hasPrefix(".") { names.append(entry) }
        return names
    }

    /// The text of a file of the run; nil when absent, and noted when unreadable.
    private mutating func text(at relative: String) -> String? {
        let file = path + "/" + relative
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            problems.append("\(relative): cannot be read as UTF-8 text")
            return nil
        }
        return text
    }

    private mutating func object(at relative: String) -> JSON? {
        guard let text = text(at: relative) else { return nil }
        do { return try JSONParser.parse(text) } catch {
            problems.append("\(relative): not valid JSON (\(error))")
            return nil
        }
    }

    private mutating func metrics(at relative: String) -> MetricsRecords? {
        guard let text = text(at: relative) else { return nil }
        let (log, bad) = MetricsRecords.parse(text)
        if bad > 0 { problems.append("\(relative): \(bad) line\(bad == 1 ? "" : "s") skipped (not a JSON object)") }
        return log
    }
}

/// The records of a `metrics.jsonl` file. A resumed stage may log a step twice; the later line wins,
/// and records are ordered by step.
public struct MetricsRecords: Sendable {
    public var records: [JSON]

    /// Parses JSON Lines, returning the log and the number of non-blank lines that were not JSON objects.
    public static func parse(_ text: String) -> (MetricsRecords, skipped: Int) {
        // Training and evaluation lines share step numbers: a repeat replaces the earlier line of its kind.
        var latest: [Int: Int] = [:]            // (step × 2 + kind) → index into `numbered`
        var numbered: [(step: Int, training: Bool, value: JSON)] = []
        var unnumbered: [JSON] = []
        var skipped = 0
        for line in text.split(whereSeparator: \.isNewline) where !line.allSatisfy(\.isWhitespace) {
            guard let value = try? JSONParser.parse(String(line)), case .object = value else { skipped += 1; continue }
            guard let step = value["step"]?.intValue else { unnumbered.append(value); continue }
            let training = value["loss"] != nil || value["held_out_loss"] == nil
            let slot = step &* 2 &+ (training ? 0 : 1)
            if let index = latest[slot] {
                numbered[index].value = value
            } else {
                latest[slot] = numbered.count
                numbered.append((step, training, value))
            }
        }
        numbered.sort { a, b in a.step != b.step ? a.step < b.step : a.training && !b.training }
        return (MetricsRecords(records: numbered.map(\.value) + unnumbered), skipped)
    }

    /// `(step, value)` for every record holding a finite number under `key`.
    public func series(_ key: String) -> [(x: Double, y: Double)] {
        records.compactMap { record in
            guard let x = record["step"]?.doubleValue, let y = record[key]?.doubleValue, y.isFinite else { return nil }
            return (x, y)
        }
    }
}
