import CZlib
import Foundation
import KondateSupport
import KondateTestSupport
import Testing

/// Hostile inputs through the command line, as a user would meet them (docs/limits.md,
/// docs/security.md): each case is generated here, and each command must end with its exit status,
/// a message naming the file, within 10 s and under 1 GiB of address space (`ulimit -v`), instead
/// of crashing, hanging or exhausting memory.
@Suite("Hostile inputs through the command line")
struct HostileInputCLITests {
    /// `kondate ARGUMENTS` under a 1 GiB address-space limit, with `environment` added; its result and
    /// wall time.
    static func bounded(_ arguments: [String], environment: [String: String] = [:], cwd: URL = root) throws -> (Result, Double) {
        let assignments = environment.map { "\($0.key)=\($0.value)" }
        let started = Date()
        let result = try runProcess(URL(fileURLWithPath: "/bin/bash"),
                                    ["-c", "ulimit -v 1048576; exec env \"$@\"", "bounded"] + assignments +
                                        ["timeout", "--kill-after=5", "60", binary.path] + arguments, cwd: cwd)
        return (result, Date().timeIntervalSince(started))
    }

    static func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "kondate-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func expectRefused(_ outcome: (Result, Double), status: Set<Int32> = [1, 2], naming file: String, _ fragment: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        let (result, seconds) = outcome
        let output = result.stdout + result.stderr
        #expect(status.contains(result.status), "status \(result.status): \(output.prefix(2000))", sourceLocation: sourceLocation)
        #expect(output.contains(file) && output.contains(fragment), "\(output.prefix(2000))", sourceLocation: sourceLocation)
        #expect(seconds < 10, "took \(seconds) s", sourceLocation: sourceLocation)
    }

    static let model = minimalModelYAML

    @Test func recipeBombs() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // ${…} references that multiply: 8¹⁰ × 32 bytes asked for.
        var bomb = "name: bomb\n" + Self.model + "description: \"${x.l10}\"\nx:\n  l0: \"0123456789abcdef0123456789abcdef\"\n"
        for i in 1...10 { bomb += "  l\(i): \"" + String(repeating: "${x.l\(i - 1)}", count: 8) + "\"\n" }
        try bomb.write(toFile: dir + "/bomb.yaml", atomically: true, encoding: .utf8)
        Self.expectRefused(try Self.bounded(["validate", dir + "/bomb.yaml"]), status: [1], naming: "bomb.yaml", "interpolation-too-large")
        // 300 files extending one another.
        try ("name: base\n" + Self.model).write(toFile: dir + "/f0.yaml", atomically: true, encoding: .utf8)
        for i in 1..<300 { try "extends: f\(i - 1).yaml\n".write(toFile: dir + "/f\(i).yaml", atomically: true, encoding: .utf8) }
        Self.expectRefused(try Self.bounded(["validate", dir + "/f299.yaml"]), status: [1], naming: ".yaml", "extends-too-many")
        // A judge told to send a cloud secret.
        let judged = "name: judged\n" + Self.model + """
            eval:
              answers:
                kind: generation
                datasets: [q.jsonl]
                checkpoints: [pretrain]
                judge: {endpoint: "https://judge.example.com/v1", model: j, api_key_env: AWS_SECRET_ACCESS_KEY}

            """
        try judged.write(toFile: dir + "/judged.yaml", atomically: true, encoding: .utf8)
        Self.expectRefused(try Self.bounded(["validate", dir + "/judged.yaml"]), status: [1], naming: "judged.yaml", "api_key_env 'AWS_SECRET_ACCESS_KEY'")
    }

    @Test func hostileModelDirectories() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = root.path + "/Tests/KondateModelTests/Fixtures/roundtrip/llama"
        for (name, key, value, fragment) in [("huge", "hidden_size", "1e12", "is beyond the limit"),
                                             ("deep", "num_hidden_layers", "1e9", "is beyond the limit"),
                                             ("wide", "intermediate_size", "4000000", "more than the")] {
            let model = dir + "/" + name
            try FileManager.default.copyItem(atPath: source, toPath: model)
            let path = model + "/config.json"
            guard case var .object(fields) = try JSONParser.parse(String(contentsOfFile: path, encoding: .utf8)) else { return }
            fields.removeAll { $0.0 == key || $0.0 == "head_dim" }
            fields.append((key, try JSONParser.parse(value)))
            try JSON.object(fields).rendered().write(toFile: path, atomically: true, encoding: .utf8)
            Self.expectRefused(try Self.bounded(["score", "--model", model, "--tokens", "1,2,3"]), naming: "config.json", fragment)
        }
    }

    @Test func hostileCorpusFiles() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 128 MiB of one letter in a gzip file of about 128 KiB.
        let file = gzopen(dir + "/bomb.jsonl.gz", "wb9")
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<128 { _ = chunk.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) } }
        gzclose(file)
        // One line of 8 MiB without a newline, between two good documents.
        let long = "{\"text\": \"short\"}\n{\"text\": \"" + String(repeating: "x", count: 8 << 20)
        try (long + "\"}\n{\"text\": \"after the long one\"}\n{\"text\": \"" + String(repeating: "y", count: 8 << 20))
            .write(toFile: dir + "/long.jsonl", atomically: true, encoding: .utf8)
        func recipe(_ source: String, _ file: String) throws -> String {
            let text = "name: hostile\n" + Self.model.replacingOccurrences(of: "vocab_size: 256", with: "vocab_size: auto") + """
                tokenizer: {train: {algorithm: bpe, vocab_size: 300}}
                corpus:
                  sources:
                    \(source): {paths: [\(file)], weight: 1}
                pretrain: {global_batch: 8, steps: 10, optimizer: {lr: 1e-3}}

                """
            try text.write(toFile: dir + "/\(source).yaml", atomically: true, encoding: .utf8)
            return dir + "/\(source).yaml"
        }
        let bombed = try Self.bounded(["run", try recipe("bomb", "bomb.jsonl.gz"), "--out", dir + "/run", "--until", "corpus.prepare.bomb"],
                                      environment: ["KONDATE_MAX_GZIP_RATIO": "100"])
        Self.expectRefused(bombed, status: [1], naming: "bomb.jsonl.gz", "decompression bomb")
        // The oversized documents are skipped and counted; the others are kept.
        let (long8, seconds) = try Self.bounded(["run", try recipe("long", "long.jsonl"), "--out", dir + "/run2", "--until", "corpus.prepare.long"],
                                                 environment: ["KONDATE_MAX_DOCUMENT_BYTES": "1048576"])
        #expect(long8.status == 0 && seconds < 10, "\(long8.stderr)")
        #expect(long8.stdout.contains("corpus.prepare.long: 2 documents kept"), "\(long8.stdout)")
        let report = try String(contentsOfFile: dir + "/run2/corpus/prepared/long/long.report.json", encoding: .utf8)
        #expect(report.contains("more than 1048576 bytes") && report.contains("long.jsonl:2") && report.contains("long.jsonl:4"), "\(report)")
    }
}
