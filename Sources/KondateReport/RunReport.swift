import Foundation
import KondateSupport

// MARK: - The report

/// `kondate report`: an HTML page describing one run, or two runs overlaid (two colours, legends naming
/// each run by its directory and recipe). Sections, in order: header and environment, stages,
/// pretraining, tuning, corpus mixture, evaluation. A section whose files are missing is replaced by a
/// one-line note. The page depends only on the run directories and `created`.
public enum RunReport {
    /// Colours for the first and second run, and lighter companions for secondary series.
    static let colors = ["#1f6fb4", "#d9480f"]
    static let secondaryColors = ["#0b3d66", "#8a2c06"]

    /// The report on `runs` (one or two), stamped with `created`.
    public static func html(runs: [ReportedRun], created: Date) -> String {
        precondition(!runs.isEmpty, "a report needs at least one run")
        let labels = runLabels(runs)
        var page = HTMLReport(title: "Kondate report: " + labels.joined(separator: " vs "))
        header(&page, runs, labels, created: created)
        stages(&page, runs, labels)
        pretraining(&page, runs, labels)
        tuning(&page, runs, labels)
        mixture(&page, runs, labels)
        evaluation(&page, runs, labels)
        page.raw("<footer>Written by kondate report. Self-contained: inline CSS and SVG only.</footer>\n")
        return page.rendered()
    }

    /// "dir (recipe)" per run, for legends and the run tables.
    static func runLabels(_ runs: [ReportedRun]) -> [String] {
        zip(runTags(runs), runs).map { "\($0) (\($1.recipeName))" }
    }

    /// The directory name per run, for column headers; when both directories have the same name,
    /// their paths as given.
    static func runTags(_ runs: [ReportedRun]) -> [String] {
        let sameName = runs.count > 1 && Set(runs.map(\.name)).count < runs.count
        return runs.map { sameName ? $0.path : $0.name }
    }

    private static func runHeaders(_ runs: [ReportedRun], _ labels: [String]) -> [HTMLReport.Cell] {
        runs.indices.map { HTMLReport.Cell(labels[$0], swatch: colors[$0 % colors.count]) }
    }

    // MARK: Header

    private static func header(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String], created: Date) {
        let names = runs.map(\.recipeName)
        page.heading(Set(names).count == 1 ? names[0] : names.joined(separator: " vs "), level: 1)
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        page.raw("<p class=\"meta\">Report on \(runs.count == 1 ? "one run" : "two runs, overlaid"); created \(Markup.escape(formatter.string(from: created))).</p>\n")

        var rows: [[HTMLReport.Cell]] = []
        func row(_ name: String, mono: Bool = false, _ value: (ReportedRun) -> String?) {
            rows.append([HTMLReport.Cell(name)] + runs.map { HTMLReport.Cell(value($0) ?? "—", style: mono ? "mono" : nil) })
        }
        row("directory") { $0.path }
        row("recipe") { $0.recipeName }
        row("recipe file") { $0.manifest["recipe"]?["file"]?.stringValue }
        row("recipe SHA-256", mono: true) { $0.manifest["recipe"]?["sha256"]?.stringValue.map { String($0.prefix(16)) } }
        row("overrides") { run in
            (run.manifest["recipe"]?["overrides"]?.arrayValue).map { $0.compactMap(\.stringValue).joined(separator: " ") }.flatMap { $0.isEmpty ? "none" : $0 }
        }
        row("kondate version") { $0.manifest["kondate"]?["version"]?.stringValue }
        row("git commit", mono: true) { $0.manifest["kondate"]?["git_commit"]?.stringValue.map { String($0.prefix(12)) } }
        row("seed") { $0.manifest["seed"].map(display) }
        row("layout") { run in
            guard case let .object(entries)? = run.manifest["layout"] else { return nil }
            return entries.map { "\($0.0) \(display($0.1))" }.joined(separator: ", ")
        }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows, caption: "Runs")

        // Environment: every key either run records, objects flattened as `blas.library`.
        var keys: [String] = []
        var values: [[String: String]] = []
        for run in runs {
            var flat: [String: String] = [:]
            func add(_ prefix: String, _ value: JSON) {
                if case let .object(entries) = value {
                    for (k, v) in entries { add(prefix.isEmpty ? k : prefix + "." + k, v) }
                } else {
                    if !keys.contains(prefix) { keys.append(prefix) }
                    flat[prefix] = prefix == "memory_bytes" ? value.doubleValue.map(Format.bytes) ?? display(value) : display(value)
                }
            }
            if let environment = run.manifest["environment"] { add("", environment) }
            values.append(flat)
        }
        if keys.isEmpty {
            page.note("No environment recorded in manifest.json.")
        } else {
            let rows = keys.map { key in [HTMLReport.Cell(key == "memory_bytes" ? "memory" : key)] + values.map { HTMLReport.Cell($0[key] ?? "—") } }
            page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows, caption: "Environment")
        }
        for (i, run) in runs.enumerated() {
            for problem in run.problems { page.note("\(labels[i]): \(problem)") }
        }
    }

    // MARK: Stages

    private static func stages(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Stages", level: 2, id: "stages")
        var ids: [String] = []
        var kinds: [String: String] = [:]
        var byRun: [[String: JSON]] = []
        for run in runs {
            var map: [String: JSON] = [:]
            for stage in run.stages {
                guard let id = stage["id"]?.stringValue else { continue }
                if !ids.contains(id) { ids.append(id) }
                kinds[id] = kinds[id] ?? stage["kind"]?.stringValue
                map[id] = stage
            }
            byRun.append(map)
        }
        guard !ids.isEmpty else { page.note("No stages recorded in manifest.json."); return }
        var header = [HTMLReport.Cell("stage"), HTMLReport.Cell("kind")]
        for i in runs.indices {
            let suffix = runs.count > 1 ? " (\(runTags(runs)[i]))" : ""
            header += [HTMLReport.Cell("status" + suffix, swatch: runs.count > 1 ? colors[i] : nil), HTMLReport.Cell("key" + suffix)]
        }
        if runs.count > 1 { header.append(HTMLReport.Cell("same key")) }
        let rows: [[HTMLReport.Cell]] = ids.map { id in
            var row = [HTMLReport.Cell(id, style: "mono"), HTMLReport.Cell(kinds[id] ?? "")]
            var keys: [String?] = []
            for map in byRun {
                let stage = map[id]
                let status = stage?["status"]?.stringValue
                let key = stage?["key"]?.stringValue
                keys.append(key)
                row.append(HTMLReport.Cell(status ?? "—", style: status == "not run" ? "muted" : nil))
                row.append(HTMLReport.Cell(key.map { String($0.prefix(12)) } ?? "—", style: "mono"))
            }
            if runs.count > 1 {
                let same = keys.allSatisfy { $0 != nil && $0 == keys[0] }
                row.append(HTMLReport.Cell(same ? "yes" : "no", style: same ? nil : "muted"))
            }
            return row
        }
        page.table(header: header, rows: rows)
    }

    // MARK: Pretraining

    private static func pretraining(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Pretraining", level: 2, id: "pretraining")
        summaryTable(&page, runs, labels, stage: "pretrain",
                     keys: ["steps", "tokens", "first_loss", "final_loss", "held_out_loss"])
        let logs = runs.map(\.pretrain)
        for (i, log) in logs.enumerated() where log == nil {
            page.note("\(labels[i]): no pretrain/metrics.jsonl; pretraining has not run or was not logged.")
        }
        guard logs.contains(where: { $0 != nil }) else { return }
        var lossSeries: [SVGPlot.Series] = [], lrSeries: [SVGPlot.Series] = [], speedSeries: [SVGPlot.Series] = []
        for (i, log) in logs.enumerated() {
            guard let log else { continue }
            let prefix = runs.count > 1 ? labels[i] + " " : ""
            lossSeries.append(.init(label: prefix + "training loss", color: colors[i], points: log.series("loss")))
            let heldOut = log.series("held_out_loss")
            if !heldOut.isEmpty {
                lossSeries.append(.init(label: prefix + "held-out loss", color: secondaryColors[i], style: .markers, points: heldOut))
            }
            lrSeries.append(.init(label: prefix.isEmpty ? "learning rate" : labels[i], color: colors[i], dashed: i > 0, points: log.series("lr")))
            speedSeries.append(.init(label: prefix.isEmpty ? "tokens/s" : labels[i], color: colors[i], points: log.series("tokens_per_second")))
        }
        figures(&page, [
            SVGPlot(title: "Pretraining loss", xLabel: "step", yLabel: "loss", series: lossSeries),
            SVGPlot(title: "Pretraining learning rate", xLabel: "step", yLabel: "learning rate", series: lrSeries, yFromZero: true),
            SVGPlot(title: "Pretraining throughput", xLabel: "step", yLabel: "tokens/s", series: speedSeries, yFromZero: true),
        ])
    }

    /// Headline numbers from the manifest's `metrics.<stage>`, one column per run.
    private static func summaryTable(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String], stage: String, keys: [String]) {
        let metrics = runs.map { $0.manifest["metrics"]?[stage] }
        guard metrics.contains(where: { $0 != nil }) else { return }
        let rows: [[HTMLReport.Cell]] = keys.compactMap { key in
            let values = metrics.map { $0?[key] }
            guard values.contains(where: { $0 != nil }) else { return nil }
            return [HTMLReport.Cell(key.replacingOccurrences(of: "_", with: " "))] + values.map { value in
                guard let value, let number = value.doubleValue else { return HTMLReport.Cell("—", numeric: true) }
                return HTMLReport.Cell(value.intValue != nil && !key.hasSuffix("loss") ? Format.grouped(value.intValue!) : score(number), numeric: true)
            }
        }
        guard !rows.isEmpty else { return }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows)
    }

    /// Draws the plots that have data side by side and notes the ones that have none.
    private static func figures(_ page: inout HTMLReport, _ plots: [SVGPlot]) {
        page.raw("<div class=\"figures\">\n")
        for plot in plots where plot.hasData { page.figure(plot.svg()) }
        page.raw("</div>\n")
        for plot in plots where !plot.hasData { page.note("\(plot.title): no values logged.") }
    }

    // MARK: Tuning

    private static func tuning(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Tuning", level: 2, id: "tuning")
        var names: [String] = []
        for run in runs { for (name, _) in run.tunes where !names.contains(name) { names.append(name) } }
        guard !names.isEmpty else { page.note("No tune stage metrics (tune/<name>/metrics.jsonl) in \(runs.count == 1 ? "this run" : "either run")."); return }
        for name in names {
            page.heading("tune." + name, level: 3)
            summaryTable(&page, runs, labels, stage: "tune." + name, keys: ["examples", "steps", "trained_tokens", "first_loss", "final_loss"])
            var lossSeries: [SVGPlot.Series] = [], lrSeries: [SVGPlot.Series] = []
            for (i, run) in runs.enumerated() {
                guard let log = run.tunes.first(where: { $0.name == name })?.log else {
                    page.note("\(labels[i]): no tune/\(name)/metrics.jsonl.")
                    continue
                }
                let prefix = runs.count > 1 ? labels[i] + " " : ""
                lossSeries.append(.init(label: prefix + "training loss", color: colors[i], points: log.series("loss")))
                let heldOut = log.series("held_out_loss")
                if !heldOut.isEmpty {
                    lossSeries.append(.init(label: prefix + "held-out loss", color: secondaryColors[i], style: .markers, points: heldOut))
                }
                lrSeries.append(.init(label: prefix.isEmpty ? "learning rate" : labels[i], color: colors[i], dashed: i > 0, points: log.series("lr")))
            }
            guard !lossSeries.isEmpty else { continue }
            figures(&page, [
                SVGPlot(title: "tune.\(name) loss", xLabel: "step", yLabel: "loss", series: lossSeries),
                SVGPlot(title: "tune.\(name) learning rate", xLabel: "step", yLabel: "learning rate", series: lrSeries, yFromZero: true),
            ])
        }
    }

    // MARK: Mixture

    private static func mixture(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Corpus mixture", level: 2, id: "mixture")
        for (i, run) in runs.enumerated() where run.mixture == nil {
            page.note("\(labels[i]): no corpus/mix/mixture.json; the mix stage has not run.")
        }
        let mixtures = runs.map { $0.mixture }
        guard mixtures.contains(where: { $0 != nil }) else { return }

        // Totals.
        let totalKeys = ["samples", "seq_len", "tokens"]
        let totals: [[HTMLReport.Cell]] = totalKeys.map { key in
            [HTMLReport.Cell(key.replacingOccurrences(of: "_", with: " "))] + mixtures.map { mix in
                HTMLReport.Cell(mix?[key]?.intValue.map(Format.grouped) ?? "—", numeric: true)
            }
        }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: totals)

        var sources: [String] = []
        let byRun: [[String: JSON]] = mixtures.map { mix in
            var map: [String: JSON] = [:]
            for source in mix?["sources"]?.arrayValue ?? [] {
                guard let name = source["name"]?.stringValue else { continue }
                if !sources.contains(name) { sources.append(name) }
                map[name] = source
            }
            return map
        }
        for source in byRun.flatMap(\.keys) where !sources.contains(source) { sources.append(source) }
        guard !sources.isEmpty else { page.note("mixture.json lists no sources."); return }

        var groups: [SVGBarChart.Group] = []
        for (i, map) in byRun.enumerated() where mixtures[i] != nil {
            let prefix = runs.count > 1 ? labels[i] + " " : ""
            groups.append(.init(label: prefix + "requested", color: colors[i], opacity: 0.35,
                                 values: sources.map { map[$0]?["requested_share"]?.doubleValue }))
            groups.append(.init(label: prefix + "realised", color: colors[i], opacity: 1,
                                values: sources.map { map[$0]?["realised_share"]?.doubleValue }))
        }
        page.figure(SVGBarChart(title: "Share of pretraining tokens per source", valueLabel: "share of tokens",
                                categories: sources, groups: groups, percent: true).svg())

        var header = [HTMLReport.Cell("source")]
        for i in runs.indices where mixtures[i] != nil {
            let suffix = runs.count > 1 ? " (\(runTags(runs)[i]))" : ""
            header += [HTMLReport.Cell("drawn tokens" + suffix, numeric: true, swatch: runs.count > 1 ? colors[i] : nil),
                       HTMLReport.Cell("available tokens" + suffix, numeric: true), HTMLReport.Cell("epochs" + suffix, numeric: true)]
        }
        let rows: [[HTMLReport.Cell]] = sources.map { name in
            var row = [HTMLReport.Cell(name)]
            for (i, map) in byRun.enumerated() where mixtures[i] != nil {
                let source = map[name]
                row.append(HTMLReport.Cell(source?["drawn_tokens"]?.intValue.map(Format.grouped) ?? "—", numeric: true))
                row.append(HTMLReport.Cell(source?["available_tokens"]?.intValue.map(Format.grouped) ?? "—", numeric: true))
                row.append(HTMLReport.Cell(source?["epochs"]?.doubleValue.map { Format.fixed($0, 3) } ?? "—", numeric: true))
            }
            return row
        }
        page.table(header: header, rows: rows)
    }

    // MARK: Evaluation

    private static func evaluation(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Evaluation", level: 2, id: "evaluation")
        var suites: [String] = []
        for run in runs { for (name, _) in run.evalSuites where !suites.contains(name) { suites.append(name) } }
        guard !suites.isEmpty else {
            page.note("No eval summaries (eval/<suite>/summary.json) in \(runs.count == 1 ? "this run" : "either run").")
            return
        }
        for suite in suites {
            let summaries = runs.map { run in run.evalSuites.first { $0.name == suite }?.summary }
            let kind = summaries.compactMap { $0?["kind"]?.stringValue }.first
            page.heading("eval." + suite + (kind.map { " (\($0))" } ?? ""), level: 3)
            for (i, summary) in summaries.enumerated() where summary == nil {
                page.note("\(labels[i]): no eval/\(suite)/summary.json.")
            }
            // checkpoint → score name → value, per run.
            var checkpoints: [String] = []
            var scoreNames: [String] = []
            var scores: [[String: [String: JSON]]] = []
            for (i, summary) in summaries.enumerated() {
                var map: [String: [String: JSON]] = [:]
                for entry in summary?["checkpoints"]?.arrayValue ?? [] {
                    guard let checkpoint = entry["checkpoint"]?.stringValue else { continue }
                    if !checkpoints.contains(checkpoint) { checkpoints.append(checkpoint) }
                    var values: [String: JSON] = [:]
                    if case let .object(entries)? = entry["scores"] {
                        for (name, value) in entries {
                            if !scoreNames.contains(name) { scoreNames.append(name) }
                            values[name] = value
                        }
                    }
                    map[checkpoint] = values
                    if let error = entry["error"]?.stringValue, !error.isEmpty {
                        page.note("\(runs.count > 1 ? labels[i] + ", " : "")\(checkpoint): \(error)")
                    }
                }
                scores.append(map)
            }
            guard !checkpoints.isEmpty, !scoreNames.isEmpty else {
                page.note(kind == "generation" ? "No scores: the answers are scored only when the suite names a judge." : "No scores recorded.")
                continue
            }
            let present = summaries.indices.filter { summaries[$0] != nil }
            var header = [HTMLReport.Cell("score")]
            for checkpoint in checkpoints {
                if present.count > 1 {
                    for i in present {
                        header.append(HTMLReport.Cell("\(checkpoint) (\(runTags(runs)[i]))", numeric: true, swatch: colors[i]))
                    }
                    header.append(HTMLReport.Cell("\(checkpoint) Δ", numeric: true))
                } else {
                    header.append(HTMLReport.Cell(checkpoint, numeric: true))
                }
            }
            let lowerIsBetter = kind == "perplexity"
            let rows: [[HTMLReport.Cell]] = scoreNames.map { name in
                var row = [HTMLReport.Cell(name)]
                for checkpoint in checkpoints {
                    let values = present.map { scores[$0][checkpoint]?[name]?.doubleValue }
                    for value in values { row.append(HTMLReport.Cell(value.map(score) ?? "—", numeric: true)) }
                    if present.count > 1 {
                        if let a = values[0], let b = values[1] {
                            let delta = b - a
                            let better = lowerIsBetter || name.contains("loss") || name.contains("perplexity") ? delta < 0 : delta > 0
                            row.append(HTMLReport.Cell((delta > 0 ? "+" : "") + score(delta), numeric: true,
                                                       style: delta == 0 ? "muted" : better ? "better" : "worse"))
                        } else {
                            row.append(HTMLReport.Cell("—", numeric: true))
                        }
                    }
                }
                return row
            }
            page.table(header: header, rows: rows)
            if present.count > 1 {
                page.note("Δ is \(runTags(runs)[present[1]]) minus \(runTags(runs)[present[0]]).")
            }
        }
    }

    // MARK: Formatting

    /// A score or loss with about four significant digits: 0.4312, 12.35, 1234.6, 13,468.
    static func score(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "∞" : "−∞") }
        if x == 0 { return "0" }
        if abs(x) >= 1e4 { return (x < 0 ? "-" : "") + Format.grouped(Int(saturating: abs(x).rounded())) }
        if abs(x) >= 1e3 { return Format.fixed(x, 1) }
        if abs(x) < 1e-4 { return String(format: "%.3e", x) }
        return String(format: "%.4g", x)
    }

    /// A scalar as text; arrays and objects in compact JSON.
    static func display(_ value: JSON) -> String {
        switch value {
        case .null: "—"
        case let .string(s): s
        case let .int(i): String(i)
        case let .double(d): Format.number(d)
        case let .bool(b): b ? "yes" : "no"
        case .array, .object: value.rendered(pretty: false)
        }
    }
}
